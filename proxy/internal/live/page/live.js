// The live view: applies the proxy's "state" messages (see package live,
// Message) to the page. Nodes are kept and moved, never rebuilt, so a hundred
// visitors updated four times a second stay smooth. Text from the proxy goes in
// with textContent only.
'use strict';
(() => {
  // ?names=ID:label,ID:label shows a server's label beside its id (the lab and
  // make run print such links: the proxy itself knows ids, not replica names).
  const labels = new Map();
  for (const pair of (new URLSearchParams(location.search).get('names') || '').split(',')) {
    const i = pair.indexOf(':');
    if (i > 0) labels.set(pair.slice(0, i), pair.slice(i + 1));
  }
  const root = document.getElementById('services');
  const eventsList = document.getElementById('events');
  const status = document.getElementById('status');
  const services = new Map(); // name -> {el, rates, serversEl, servers: Map(id -> server), visitors: Map(v -> visitor)}
  const events = new Map();   // seq -> li
  let windowMS = 60000;
  let missed = 0;

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // set writes a property only when it changes: a write the page does not need
  // still costs the browser a style pass.
  function set(obj, key, value) {
    if (obj[key] !== value) obj[key] = value;
  }

  function setStatus(s, text) {
    status.dataset.status = s;
    status.textContent = text;
  }

  function service(name) {
    let s = services.get(name);
    if (s) return s;
    const sec = el('section', 'service');
    sec.dataset.service = name;
    const h = el('h2', '', name + ' ');
    const mode = el('small');
    h.append(mode);
    const rates = el('div', 'rates');
    const serversEl = el('div', 'servers');
    sec.append(h, rates, serversEl);
    const empty = root.querySelector('.empty');
    if (empty) empty.remove();
    root.append(sec);
    s = {el: sec, mode, rates, serversEl, servers: new Map(), visitors: new Map()};
    services.set(name, s);
    return s;
  }

  function server(s, id) {
    let sv = s.servers.get(id);
    if (sv) return sv;
    const box = el('div', 'server');
    box.dataset.server = id;
    const head = el('div', 'head');
    const name = el('span', 'name', labels.get(id) || id);
    const idEl = el('code', 'id', labels.has(id) ? id : '');
    const state = el('span', 'state');
    const rps = el('span', 'rps');
    const count = el('span', 'count');
    head.append(name, idEl, state, rps, count);
    const visitors = el('div', 'visitors');
    box.append(head, visitors);
    // In order of their names, so that service1-1 comes before service1-2.
    const key = labels.get(id) || id;
    const after = [...s.servers.values()].find(o => (labels.get(o.box.dataset.server) || o.box.dataset.server) > key);
    s.serversEl.insertBefore(box, after ? after.box : null);
    sv = {box, state, rps, count, visitors};
    s.servers.set(id, sv);
    return sv;
  }

  function rate(x) { return x >= 10 ? x.toFixed(0) : x.toFixed(1); }

  function applyService(m, now) {
    const s = service(m.name);
    // Sticky by cookie, or by the client's address (balance source).
    const sticky = m.cookie || m.balance === 'source';
    s.mode.textContent = m.cookie ? 'sticky cookie ' + m.cookie
      : m.balance === 'source' ? 'balance source: sticky by client address, no cookie'
      : (m.balance || 'roundrobin') + ', no sticky cookie';
    const r = m.rates;
    const parts = [['req/s', r.requests]];
    if (m.cookie) parts.push(['hit/s', r.hit], ['new/s', r.new], ['rebalanced/s', r.rebalanced]);
    parts.push(['failed/s', r.failed]);
    if (s.rates.childElementCount !== parts.length) {
      s.rates.textContent = '';
      for (const [label] of parts) {
        const span = el('span', 'rate');
        span.dataset.rate = label;
        span.append(el('b'), ' ' + label + '   ');
        s.rates.append(span);
      }
    }
    parts.forEach(([, v], i) => set(s.rates.children[i].firstChild, 'textContent', rate(v)));
    const listed = new Set();
    for (const st of m.servers) {
      listed.add(st.id);
      const sv = server(s, st.id);
      set(sv.box.dataset, 'state', st.state);
      set(sv.state, 'textContent', st.state);
      set(sv.rps, 'textContent', rate(st.rps) + ' req/s');
    }
    for (const [id, sv] of s.servers) {
      if (!listed.has(id)) { // left the pool
        sv.box.remove();
        s.servers.delete(id);
      }
    }
    const seen = new Set();
    for (const v of m.visitors) {
      seen.add(v.v);
      let vis = s.visitors.get(v.v);
      if (!vis) {
        const chip = el('span', 'visitor', v.v.slice(0, 6));
        chip.dataset.visitor = v.v;
        vis = {chip, server: ''};
        s.visitors.set(v.v, vis);
      }
      vis.seenAt = now - v.seen_ms;
      set(vis.chip.dataset, 'outcome', v.o || '');
      // A sticky visitor moved off a dead replica stays marked for a while.
      set(vis.chip.dataset, 'moved', sticky && v.from && v.moved_ms < 5000 ? 'yes' : '');
      set(vis.chip, 'title', 'visitor ' + v.v + (v.from ? ', came from ' + (labels.get(v.from) || v.from) : ''));
      if (vis.server !== v.s) {
        const moved = vis.server !== '';
        vis.server = v.s;
        server(s, v.s).visitors.append(vis.chip);
        // On a sticky service a move is news and flashes; on a round-robin one
        // every chip moves at every request, and a flash would say nothing.
        if (moved && sticky && vis.chip.animate) {
          vis.chip.animate([{transform: 'scale(1.3)', background: '#ffd54f'}, {transform: 'none'}], {duration: 900, easing: 'ease-out'});
        }
      }
    }
    for (const [key, vis] of s.visitors) {
      if ((m.full && !seen.has(key)) || now - vis.seenAt > windowMS || !s.servers.has(vis.server)) {
        vis.chip.remove();
        s.visitors.delete(key);
      }
    }
    for (const sv of s.servers.values()) {
      const n = sv.visitors.childElementCount;
      set(sv.count, 'textContent', n + (n === 1 ? ' visitor' : ' visitors'));
    }
  }

  function applyEvents(list) {
    for (const ev of list) {
      if (events.has(ev.seq)) continue;
      const li = el('li');
      li.dataset.kind = ev.kind;
      li.dataset.server = ev.server;
      const at = new Date(Date.now() - ev.ago_ms);
      li.append(el('time', '', at.toLocaleTimeString()), ev.service + ' ',
        el('code', '', labels.get(ev.server) || ev.server), ' ', el('span', 'kind', ev.kind));
      if (ev.why) li.append(' (' + ev.why + ')');
      eventsList.prepend(li);
      events.set(ev.seq, li);
    }
    while (events.size > 50) {
      const oldest = Math.min(...events.keys());
      events.get(oldest).remove();
      events.delete(oldest);
    }
  }

  function apply(m) {
    const now = performance.now();
    windowMS = m.window_ms || windowMS;
    const names = new Set();
    for (const sm of m.services) {
      names.add(sm.name);
      applyService(sm, now);
    }
    for (const [name, s] of services) {
      if (!names.has(name)) {
        s.el.remove();
        services.delete(name);
      }
    }
    applyEvents(m.events);
    const text = missed ? 'live (caught up after ' + missed + ' missed updates)' : 'live';
    if (status.textContent !== text) setStatus('live', text);
  }

  const es = new EventSource('/live/events');
  es.addEventListener('state', e => apply(JSON.parse(e.data)));
  es.addEventListener('dropped', e => { missed += JSON.parse(e.data).dropped; });
  // EventSource reconnects by itself; the first message after that is whole.
  es.addEventListener('error', () => setStatus('reconnecting', 'reconnecting…'));
})();
