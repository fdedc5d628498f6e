// The 2018 tutorial's service, as the post wrote it: express + cookie-parser +
// express-session with its default MemoryStore (sessions live in this process
// and are never evicted), a hard-coded secret, one route. It is the baseline
// `make bench` measures our Go services against, not something to deploy.
//
// Changes from the post, all for the benchmark: SERVICE_NAME picks the route
// (the post had one copy per service) and PORT the port (the post had 8080),
// so two replicas can run side by side on 127.0.0.1.
var express = require('express');
var cookieParser = require('cookie-parser');
var session = require('express-session');
var os = require('os');

var name = process.env.SERVICE_NAME || 'service1';
var port = parseInt(process.env.PORT || '8080', 10);

var app = express();
app.use(cookieParser());
app.use(session({
  secret: 'keyboard cat',
  resave: false,
  saveUninitialized: true
}));

app.get('/' + name, function (req, res) {
  if (req.session.page_views) {
    req.session.page_views++;
  } else {
    req.session.page_views = 1;
  }
  res.setHeader('Content-Type', 'text/html');
  res.write(JSON.stringify(req.headers));
  res.end('<h1>I\'m ' + name + ' on ' + os.hostname() +
    ' non unique visits ' + req.session.page_views + '</h1>');
});

app.listen(port, '127.0.0.1', function () {
  console.log(name + ' listening on 127.0.0.1:' + port);
});
