-- wrk script for scenario 3: each request carries the connect.sid cookie of the
-- next of N distinct sticky clients, round robin. The cookie values (one a line,
-- "<server id>~<session>") are read from the file named by the first script
-- argument: wrk -s lua/clients.lua URL -- cookies.txt
local cookies = {}
local n = 0
local i = 0

function init(args)
  for line in io.lines(args[1]) do
    n = n + 1
    cookies[n] = "connect.sid=" .. line
  end
  if n == 0 then
    error("clients.lua: no cookies in " .. tostring(args[1]))
  end
end

function request()
  i = i % n + 1
  return wrk.format(nil, nil, { ["Cookie"] = cookies[i] })
end
