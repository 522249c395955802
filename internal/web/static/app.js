// Parley's web app: plain JavaScript over the node's local API
// (api/v1/…, see api/v1/openapi.json). Every URL is relative, so the
// page works unchanged under a reverse proxy's path prefix. Nothing from
// the network is ever rendered as HTML: text goes in with textContent.
'use strict';

(function () {
  const LIMIT = 4096; // bytes of UTF-8 in one message
  const PAGE = 100; // history page, rooms and DMs
  const POLL_MS = 10000; // info and people refresh, as a safety net
  const GROUP_MS = 5 * 60 * 1000; // lines of one author within this share a header

  // The page's directory: "/" for /login, "/me/" for /me/login.
  const base = location.pathname.replace(/[^/]*$/, '');
  const utf8 = new TextEncoder();

  const $ = (id) => document.getElementById(id);
  const el = {};
  for (const id of ['boot', 'login', 'login-form', 'login-input', 'login-error', 'app', 'sidebar', 'scrim',
    'nav-open', 'nav-close', 'nav-badge', 'me-card', 'me-avatar', 'me-nick', 'me-status', 'room-list',
    'rooms-empty', 'join-form', 'join-input', 'join-error', 'dm-list', 'dms-empty', 'conv-title', 'conv-sub',
    'leave-btn', 'invite-btn', 'private-btn', 'people-open', 'people-count', 'people-close', 'people-title', 'people-list', 'others-title',
    'others-list', 'banner', 'banner-text', 'banner-action', 'scroller', 'history-top', 'messages', 'empty',
    'empty-title', 'empty-text', 'jump', 'compose', 'text', 'send', 'compose-error', 'bytes', 'me-dialog',
    'me-conn', 'nick-form', 'nick-input', 'nick-error', 'me-peer', 'me-addrs', 'me-relay', 'me-relay-addrs',
    'toasts']) {
    el[id] = $(id);
  }

  // ---------- small helpers ----------

  function h(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  const short = (id) => (id ? String(id).slice(-6) : '');
  const bytes = (s) => utf8.encode(s).length;
  const plural = (n, one, many) => n + ' ' + (n === 1 ? one : many);

  function debounce(f, ms) {
    let t = null;
    return function () {
      clearTimeout(t);
      t = setTimeout(f, ms);
    };
  }

  // hue picks one of eight avatar colours from a peer ID (FNV-1a).
  function hue(id) {
    let x = 0x811c9dc5;
    for (const c of String(id)) x = Math.imul(x ^ c.charCodeAt(0), 16777619) >>> 0;
    return (x >>> 13) % 8;
  }

  function initial(nick, id) {
    const s = (nick || '').trim() || short(id);
    const first = Array.from(s)[0] || '?';
    return first.toUpperCase();
  }

  function avatar(nick, id, cls) {
    const a = h('span', 'avatar hue-' + hue(id) + (cls ? ' ' + cls : ''), initial(nick, id));
    a.setAttribute('aria-hidden', 'true');
    return a;
  }

  // who renders nick + the end of the peer ID, the way the terminal does.
  function who(nick, id, you) {
    const w = h('span', 'who');
    w.append(nick ? h('span', 'nick', nick) : h('span', 'nick anon', 'unnamed'));
    w.append(h('span', 'pid', short(id)));
    if (you) w.append(h('span', 'you-tag', 'you'));
    w.title = id;
    return w;
  }

  const timeFmt = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit' });
  const dayFmt = new Intl.DateTimeFormat(undefined, { weekday: 'long', month: 'long', day: 'numeric' });
  const dayYearFmt = new Intl.DateTimeFormat(undefined, { weekday: 'long', year: 'numeric', month: 'long', day: 'numeric' });
  const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'medium' });

  function dayKey(d) {
    return d.getFullYear() + '-' + d.getMonth() + '-' + d.getDate();
  }

  function dayLabel(d) {
    const today = new Date();
    const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
    if (dayKey(d) === dayKey(today)) return 'Today';
    if (dayKey(d) === dayKey(yesterday)) return 'Yesterday';
    return d.getFullYear() === today.getFullYear() ? dayFmt.format(d) : dayYearFmt.format(d);
  }

  // ---------- the API ----------

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function api(method, path, body) {
    const opts = { method, headers: { Accept: 'application/json' }, credentials: 'same-origin', cache: 'no-store' };
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, opts);
    } catch (e) {
      throw new ApiError(0, 'Parley is not answering. Is it still running on this computer?');
    }
    let data = null;
    if (res.status !== 204) {
      try {
        data = await res.json();
      } catch (e) {
        data = null;
      }
    }
    if (res.status === 401 && path !== 'api/v1/session') {
      showLogin('');
      throw new ApiError(401, (data && data.error) || 'Not logged in.');
    }
    if (!res.ok) {
      throw new ApiError(res.status, (data && data.error) || 'Parley answered ' + res.status + ' ' + res.statusText + '.');
    }
    return data;
  }

  const enc = encodeURIComponent;

  // ---------- state ----------

  const S = {
    me: null, // GET info
    rooms: [], // [{room, unread}]
    dms: [], // [{peer, nick, last, unread}]
    peers: [], // [{peer, nick, rooms, path, relay, online}]
    view: null, // {kind: 'room'|'dm', id}
    conv: null, // the conversation shown (see newConv)
    early: new Map(), // DM id -> state seen on the stream before its POST answered
    nicks: new Map(), // peer ID -> the nick it announced last, from anything seen
    stream: null,
    streamUp: false,
    restartDelay: 1000,
    restartTimer: null,
    running: false,
    unseen: 0, // new messages below a scrolled-up view
  };

  const viewKey = 'parley:view:' + base;

  function newConv(view) {
    return { kind: view.kind, id: view.id, msgs: [], byId: new Map(), more: false, loaded: false, loadingOlder: false, error: '' };
  }

  function isCurrent(kind, id) {
    return !!S.conv && S.conv.kind === kind && S.conv.id === id;
  }

  function peerInfo(id) {
    return S.peers.find((p) => p.peer === id);
  }

  function nickOf(id) {
    const p = peerInfo(id);
    if (p && p.nick) return p.nick;
    return S.nicks.get(id) || '';
  }

  // learnNick remembers the nick a peer used, for lists that lack it.
  function learnNick(id, nick) {
    if (!id || !nick || (S.me && id === S.me.peer) || S.nicks.get(id) === nick) return;
    S.nicks.set(id, nick);
    renderNamesSoon();
  }
  const renderNamesSoon = debounce(() => {
    renderLists();
    renderPeople();
    renderHeader();
  }, 100);

  // ---------- login ----------

  function showLogin(message) {
    S.running = false;
    stopStream();
    el.boot.hidden = true;
    el.app.hidden = true;
    el.login.hidden = false;
    el['login-error'].textContent = message || '';
    el['login-error'].hidden = !message;
    if (el['me-dialog'].open) el['me-dialog'].close();
  }

  async function login(token) {
    await api('POST', 'api/v1/session', { token });
  }

  function tokenFrom(s) {
    s = s.trim();
    const i = s.indexOf('#');
    if (i >= 0) s = s.slice(i + 1);
    try {
      s = decodeURIComponent(s);
    } catch (e) {
      // keep it as typed
    }
    return s.trim();
  }

  el['login-form'].addEventListener('submit', async (e) => {
    e.preventDefault();
    const token = tokenFrom(el['login-input'].value);
    if (!token) {
      el['login-error'].textContent = 'Paste the whole link Parley printed, the one that ends with #…';
      el['login-error'].hidden = false;
      return;
    }
    try {
      await login(token);
      el['login-input'].value = '';
      start();
    } catch (err) {
      el['login-error'].textContent = err.status === 401
        ? 'That key is not the right one. Use the newest link Parley printed.'
        : err.message;
      el['login-error'].hidden = false;
    }
  });

  // ---------- start-up and full refresh ----------

  async function boot() {
    if (/\/login$/.test(location.pathname)) {
      const token = tokenFrom(location.hash);
      // The key leaves the address bar (and the history) at once.
      history.replaceState(null, '', base);
      if (token) {
        try {
          await login(token);
        } catch (err) {
          showLogin(err.status === 401
            ? 'This link is not valid any more: use the newest link Parley printed.'
            : err.message);
          return;
        }
      }
    }
    start();
  }

  async function start() {
    let info;
    try {
      info = await api('GET', 'api/v1/info');
    } catch (err) {
      if (err.status === 401) return; // the login screen shows
      el.boot.hidden = false;
      el.boot.firstElementChild.textContent = err.message + ' Trying again…';
      setTimeout(start, 3000);
      return;
    }
    S.me = info;
    S.running = true;
    // The lists and the conversation last open in this tab are asked for
    // at once (after info, so that the page is no older than the event
    // stream's start): one round trip before the first screen, not two.
    let saved = null;
    try {
      saved = JSON.parse(sessionStorage.getItem(viewKey) || 'null');
    } catch (e) {
      saved = null;
    }
    const savedPage = saved && saved.kind && saved.id ? fetchPage(saved) : null;
    if (savedPage) savedPage.catch(() => {}); // openView reports it
    el.boot.hidden = true;
    el.login.hidden = true;
    el.app.hidden = false;
    await loadState();
    renderMe();
    renderLists();
    const view = validView(saved) ? saved : firstView();
    openView(view, view === saved ? savedPage : null);
    openStream(info.seq);
    // An invite link opened as this page's fragment (…/#parley://join/…)
    // joins its room; the link leaves the address bar at once.
    const hash = decodeURIComponent(location.hash.slice(1));
    if (hash.startsWith(INVITE)) {
      history.replaceState(null, '', base);
      joinRoom(hash, el['join-error']);
    }
  }

  async function loadState() {
    await Promise.all([loadRooms(), loadDMs(), loadPeers()].map((p) => p.catch(reportError)));
  }

  async function loadInfo() {
    S.me = await api('GET', 'api/v1/info');
    renderMe();
  }
  async function loadRooms() {
    S.rooms = (await api('GET', 'api/v1/rooms')).rooms || [];
  }
  async function loadDMs() {
    S.dms = (await api('GET', 'api/v1/dms')).conversations || [];
    for (const d of S.dms) learnNick(d.peer, d.nick);
  }
  async function loadPeers() {
    S.peers = (await api('GET', 'api/v1/peers')).peers || [];
  }

  function reportError(err) {
    // Not logged in: the login screen says so. Not answering: the banner
    // does, while the stream reconnects.
    if (err && (err.status === 401 || err.status === 0)) return;
    toast(err && err.message ? err.message : String(err), 'error');
  }

  const refreshRooms = debounce(() => loadRooms().then(renderLists, reportError), 200);
  const refreshDMs = debounce(() => loadDMs().then(() => {
    renderLists();
    if (S.conv && S.conv.kind === 'dm') renderHeader();
  }, reportError), 200);
  const refreshPeers = debounce(() => loadPeers().then(() => {
    renderLists();
    renderPeople();
    renderHeader();
  }, reportError), 200);
  const refreshInfo = debounce(() => loadInfo().catch(reportError), 300);

  function validView(v) {
    if (!v || (v.kind !== 'room' && v.kind !== 'dm') || typeof v.id !== 'string' || !v.id) return false;
    if (v.kind === 'room') return S.rooms.some((r) => r.room === v.id);
    return true;
  }

  function firstView() {
    return S.rooms.length ? { kind: 'room', id: S.rooms[0].room } : null;
  }

  // refetch brings everything up to date after missed events.
  async function refetch() {
    try {
      await loadInfo();
    } catch (err) {
      reportError(err);
      return null;
    }
    await loadState();
    renderLists();
    renderPeople();
    if (S.view && !validView(S.view)) {
      openView(firstView());
    } else if (S.conv && S.conv.loaded) {
      refreshConv();
    }
    return S.me.seq;
  }

  // ---------- the event stream ----------

  function openStream(after) {
    stopStream();
    const url = 'api/v1/events' + (after !== undefined && after !== null ? '?after=' + after : '');
    const es = new EventSource(url);
    S.stream = es;
    es.onopen = () => {
      S.streamUp = true;
      S.restartDelay = 1000;
      renderBanner();
    };
    es.onmessage = (m) => {
      let ev;
      try {
        ev = JSON.parse(m.data);
      } catch (e) {
        return;
      }
      onEvent(ev);
    };
    es.addEventListener('resync', () => {
      // Events were missed (a long disconnect, or the node restarted).
      refetch();
    });
    es.onerror = () => {
      S.streamUp = false;
      renderBanner();
      if (es.readyState === EventSource.CLOSED && S.stream === es) {
        // The browser gave up (an error status, e.g. logged out): find out
        // why, refetch, and start a new stream.
        scheduleRestart();
      }
    };
  }

  function stopStream() {
    if (S.stream) S.stream.close();
    S.stream = null;
    S.streamUp = false;
    clearTimeout(S.restartTimer);
  }

  function scheduleRestart() {
    clearTimeout(S.restartTimer);
    S.restartTimer = setTimeout(async () => {
      if (!S.running) return;
      const seq = await refetch();
      if (!S.running) return;
      if (seq === null) {
        S.restartDelay = Math.min(S.restartDelay * 2, 15000);
        scheduleRestart();
        return;
      }
      openStream(seq);
    }, S.restartDelay);
  }

  function onEvent(ev) {
    switch (ev.event) {
      case 'message':
        onRoomMessage(ev);
        break;
      case 'dm':
        onDM(ev);
        break;
      case 'queued':
        setDMState(ev.id, 'queued', ev.error, ev.to);
        refreshDMs();
        break;
      case 'delivered':
        setDMState(ev.id, 'delivered', '', ev.to);
        refreshDMs();
        break;
      case 'error':
        if (ev.id && failMessage(ev.id, ev.error)) break;
        toast(ev.error, 'error');
        break;
      case 'peer-joined':
      case 'peer-left':
        learnNick(ev.peer, ev.nick);
        refreshPeers();
        refreshInfo();
        // The connection itself closes a moment after a peer leaves.
        if (ev.event === 'peer-left') setTimeout(refreshInfo, 2000);
        break;
      case 'connection':
        refreshPeers();
        refreshInfo();
        break;
      case 'relay-reservation':
        refreshInfo();
        break;
      case 'info':
        toast(ev.text);
        break;
    }
  }

  function onRoomMessage(ev) {
    const own = !!S.me && ev.from === S.me.peer;
    learnNick(ev.from, ev.nick);
    if (isCurrent('room', ev.room)) {
      addLive(S.conv, {
        id: ev.id, from: ev.from, nick: ev.nick, text: ev.text, sent_at: ev.sent_at, own,
        backfill: !!ev.backfill,
      });
      if (!own) markReadSoon();
    } else if (!own) {
      refreshRooms();
    }
  }

  function onDM(ev) {
    learnNick(ev.from, ev.nick);
    if (isCurrent('dm', ev.from)) {
      addLive(S.conv, { id: ev.id, from: ev.from, nick: ev.nick, text: ev.text, sent_at: ev.sent_at, own: false, state: 'received' });
      markReadSoon();
    }
    refreshDMs();
  }

  function setDMState(id, state, reason, to) {
    const c = S.conv;
    const m = c && c.byId.get(id);
    if (m) {
      if (m.state === 'delivered') return;
      m.state = state;
      m.reason = reason || '';
      updateRow(m);
      return;
    }
    // The POST that sent it has not answered yet, or another tab sent it.
    S.early.set(id, { state, reason: reason || '' });
    if (S.early.size > 500) S.early.delete(S.early.keys().next().value);
    if (c && c.kind === 'dm' && c.id === to && c.loaded) refreshConvSoon();
  }

  function failMessage(id, reason) {
    const c = S.conv;
    const m = c && c.byId.get(id);
    if (!m) {
      S.early.set(id, { state: 'failed', reason: reason || '' });
      return false;
    }
    if (c.kind === 'dm') {
      m.state = 'failed';
    } else {
      m.pending = false;
      m.failed = true;
    }
    m.reason = reason || '';
    updateRow(m);
    return true;
  }

  // ---------- conversations ----------

  // fetchPage asks for the newest page of a conversation.
  function fetchPage(view) {
    return api('GET', messagesPath(view) + '?limit=' + PAGE);
  }

  // openView shows a conversation; page, if given, is its newest page
  // already asked for.
  async function openView(view, page) {
    S.view = view;
    S.conv = view ? newConv(view) : null;
    S.unseen = 0;
    try {
      sessionStorage.setItem(viewKey, JSON.stringify(view));
    } catch (e) {
      // private mode: fine
    }
    closeDrawers();
    resetLeave();
    el['compose-error'].textContent = '';
    renderHeader();
    renderLists();
    renderPeople();
    renderMessages('bottom');
    if (!view) return;
    const c = S.conv;
    try {
      page = await (page || fetchPage(c));
      c.more = !!page.more;
      if (S.conv !== c) return;
      const live = c.msgs; // arrived on the stream while the page loaded
      c.msgs = [];
      c.byId.clear();
      for (const m of (page.messages || []).map(fromAPI)) keep(c, m, c.msgs.length);
      for (const m of live) if (!c.byId.has(m.id)) keep(c, m, c.msgs.length);
      c.loaded = true;
    } catch (err) {
      if (S.conv !== c) return;
      c.loaded = true;
      c.error = err.message;
    }
    renderHeader();
    renderMessages('bottom');
    markRead(c);
    fillUp();
  }

  function fromAPI(m) {
    if (!m.own) learnNick(m.from || m.peer, m.nick);
    return {
      id: m.id, from: m.own ? (S.me && S.me.peer) : (m.from || m.peer), nick: m.nick, text: m.text,
      sent_at: m.sent_at, own: !!m.own, state: m.state,
    };
  }

  // keep puts m into c at index i.
  function keep(c, m, i) {
    m.t = Date.parse(m.sent_at) || Date.now();
    c.msgs.splice(i, 0, m);
    c.byId.set(m.id, m);
  }

  // addLive adds a message from the stream or one just sent.
  function addLive(c, m) {
    const had = c.byId.get(m.id);
    if (had) {
      if (had.pending || had.failed) {
        // Our own line, sent and now confirmed by the node.
        had.pending = false;
        had.failed = false;
        had.reason = '';
        updateRow(had);
      }
      return;
    }
    if (!c.loaded) {
      keep(c, m, c.msgs.length); // merged when the history arrives
      return;
    }
    const wasBottom = atBottom();
    let i = c.msgs.length;
    if (m.backfill) {
      // History caught up from others goes where it belongs in time.
      const t = Date.parse(m.sent_at) || 0;
      while (i > 0 && (c.msgs[i - 1].t > t || (c.msgs[i - 1].t === t && c.msgs[i - 1].id > m.id))) i--;
    }
    keep(c, m, i);
    if (i === c.msgs.length - 1) {
      appendRows(m, c.msgs[i - 1]);
      if (c.msgs.length === 1) renderHistoryTop();
      renderEmpty();
    } else {
      renderMessages('anchor');
    }
    if (wasBottom || (m.own && !m.backfill)) {
      toBottom();
    } else if (!m.backfill) {
      S.unseen++;
      renderJump();
    }
  }

  // refreshConv merges the newest page into the conversation shown (after
  // a resync, or a DM another tab sent).
  async function refreshConv() {
    const c = S.conv;
    if (!c || !c.loaded) return;
    let page;
    try {
      page = await api('GET', messagesPath(c) + '?limit=' + PAGE);
    } catch (err) {
      reportError(err);
      return;
    }
    if (S.conv !== c) return;
    const fresh = (page.messages || []).map(fromAPI);
    const overlaps = fresh.some((m) => c.byId.has(m.id));
    if (!overlaps && c.msgs.length && fresh.length) {
      // A gap: start over from the newest page.
      c.msgs = [];
      c.byId.clear();
      c.more = !!page.more;
      for (const m of fresh) keep(c, m, c.msgs.length);
      renderMessages('bottom');
      return;
    }
    let changed = false;
    for (const m of fresh) {
      const had = c.byId.get(m.id);
      if (had) {
        if (m.state && had.state !== m.state && had.state !== 'delivered') {
          had.state = m.state;
          updateRow(had);
        }
        continue;
      }
      let i = c.msgs.length;
      while (i > 0 && c.msgs[i - 1].t > (Date.parse(m.sent_at) || 0)) i--;
      keep(c, m, i);
      changed = true;
    }
    if (changed) {
      const wasBottom = atBottom();
      renderMessages(wasBottom ? 'bottom' : 'anchor');
    }
  }
  const refreshConvSoon = debounce(refreshConv, 250);

  // messagesPath is the API path of a conversation's messages.
  function messagesPath(c) {
    return (c.kind === 'room' ? 'api/v1/rooms/' : 'api/v1/dms/') + enc(c.id) + '/messages';
  }

  async function loadOlder() {
    const c = S.conv;
    if (!c || !c.loaded || !c.more || c.loadingOlder) return;
    const first = c.msgs.find((m) => !m.pending && !m.failed);
    if (!first) return;
    c.loadingOlder = true;
    renderHistoryTop();
    try {
      const page = await api('GET', messagesPath(c) + '?limit=' + PAGE + '&before=' + enc(first.id));
      if (S.conv !== c) return;
      c.more = !!page.more;
      const older = (page.messages || []).map(fromAPI).filter((m) => !c.byId.has(m.id));
      older.forEach((m, i) => keep(c, m, i));
      c.loadingOlder = false;
      renderMessages('prepend');
    } catch (err) {
      c.loadingOlder = false;
      if (err.status === 404) c.more = false;
      else reportError(err);
      renderHistoryTop();
    }
    fillUp();
  }

  // fillUp loads older pages until the view can scroll (or all is shown).
  function fillUp() {
    const c = S.conv;
    if (c && c.more && !c.loadingOlder && el.scroller.scrollHeight <= el.scroller.clientHeight + 40) {
      loadOlder();
    }
  }

  // ---------- reading ----------

  // markReadSoon marks the conversation shown now as read in a moment
  // (lines arrive in bursts); it is marked even if the person has moved on
  // meanwhile, since they saw the lines.
  let readTimer = null;
  let readConv = null;
  function markReadSoon() {
    if (readConv && readConv !== S.conv) markRead(readConv);
    readConv = S.conv;
    clearTimeout(readTimer);
    readTimer = setTimeout(() => {
      const c = readConv;
      readConv = null;
      markRead(c);
    }, 300);
  }

  async function markRead(c) {
    if (!c || !c.loaded || c.error || document.hidden) return;
    const path = c.kind === 'room' ? 'api/v1/rooms/' + enc(c.id) + '/read' : 'api/v1/dms/' + enc(c.id) + '/read';
    const entry = c.kind === 'room' ? S.rooms.find((r) => r.room === c.id) : S.dms.find((d) => d.peer === c.id);
    if (entry) entry.unread = 0;
    renderLists();
    try {
      await api('POST', path);
    } catch (err) {
      if (err.status !== 404) reportError(err);
      return;
    }
    if (c.kind === 'room') refreshRooms();
    else refreshDMs();
  }

  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && S.running) {
      markReadSoon();
      refreshInfo();
      refreshPeers();
    }
  });

  setInterval(() => {
    if (!document.hidden && S.running) {
      refreshInfo();
      refreshPeers();
    }
  }, POLL_MS);

  // ---------- rendering: the message list ----------

  function atBottom() {
    const s = el.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < 48;
  }

  function toBottom() {
    el.scroller.scrollTop = el.scroller.scrollHeight;
    stuck = true;
    S.unseen = 0;
    renderJump();
  }

  function renderJump() {
    el.jump.hidden = S.unseen === 0;
    el.jump.textContent = S.unseen === 1 ? '1 new message ↓' : S.unseen + ' new messages ↓';
  }

  const stateText = {
    sending: 'sent',
    queued: 'queued · will retry',
    delivered: 'delivered',
    failed: 'not delivered',
  };
  const stateHelp = {
    sending: 'On its way: waiting for the other side to confirm.',
    queued: 'Not delivered yet: kept on this computer and sent when the other side is reachable.',
    delivered: 'The other side has it.',
    failed: 'Could not be delivered.',
  };

  // rowsFor returns the nodes for m after prev: a day separator when the
  // day changes, then the line (with its author when the author changes).
  function rowsFor(m, prev) {
    const out = [];
    const d = new Date(m.t);
    const newDay = !prev || dayKey(new Date(prev.t)) !== dayKey(d);
    if (newDay) {
      const sep = h('div', 'day');
      sep.setAttribute('role', 'separator');
      sep.append(h('span', '', dayLabel(d)));
      out.push(sep);
    }
    const head = newDay || !prev || prev.from !== m.from || prev.nick !== m.nick || m.t - prev.t > GROUP_MS;
    const row = h('div', 'msg' + (head ? ' head' : '') + (m.own ? ' own' : ''));
    row.dataset.id = m.id;
    const gutter = h('div', 'gutter');
    const time = h('time', 'time', timeFmt.format(d));
    time.dateTime = m.sent_at;
    time.title = fullFmt.format(d);
    if (head) {
      gutter.append(avatar(m.nick, m.from));
      const meta = h('div', 'meta');
      meta.append(who(m.nick, m.from, m.own), time);
      row.append(gutter);
      const body = h('div', 'body');
      body.append(meta, h('div', 'text', m.text));
      row.append(body);
    } else {
      gutter.append(time);
      const body = h('div', 'body');
      body.append(h('div', 'text', m.text));
      row.append(gutter, body);
    }
    const st = h('div', 'state');
    row.lastChild.append(st);
    paintState(row, m);
    out.push(row);
    return out;
  }

  function paintState(row, m) {
    const st = row.querySelector('.state');
    let text = '';
    let help = '';
    let cls = '';
    if (m.pending) {
      text = 'sending…';
      cls = 'sending';
    } else if (m.failed) {
      text = 'not sent' + (m.reason ? ': ' + m.reason : '');
      cls = 'failed';
    } else if (m.own && m.state && stateText[m.state]) {
      text = stateText[m.state];
      help = stateHelp[m.state] + (m.reason ? ' (' + m.reason + ')' : '');
      cls = m.state;
    }
    st.textContent = text;
    st.title = help;
    st.className = 'state' + (cls ? ' ' + cls : '');
    st.hidden = !text;
    row.classList.toggle('pending', !!m.pending);
    row.classList.toggle('failed', !!m.failed || m.state === 'failed');
  }

  function updateRow(m) {
    const row = el.messages.querySelector('[data-id="' + CSS.escape(m.id) + '"]');
    if (row) paintState(row, m);
  }

  function appendRows(m, prev) {
    el.messages.append(...rowsFor(m, prev));
  }

  // renderMessages redraws the list; keep says what stays in view:
  // 'bottom' (the newest), 'prepend' (older lines came in above) or
  // 'anchor' (the line at the top of the view).
  function renderMessages(keepView) {
    const s = el.scroller;
    const c = S.conv;
    let anchorId = null;
    let anchorTop = 0;
    const oldHeight = s.scrollHeight;
    const oldTop = s.scrollTop;
    if (keepView === 'anchor') {
      const top = s.getBoundingClientRect().top;
      for (const row of el.messages.querySelectorAll('.msg')) {
        const r = row.getBoundingClientRect();
        if (r.bottom > top) {
          anchorId = row.dataset.id;
          anchorTop = r.top - top;
          break;
        }
      }
    }
    const frag = document.createDocumentFragment();
    if (c) {
      let prev = null;
      for (const m of c.msgs) {
        frag.append(...rowsFor(m, prev));
        prev = m;
      }
    }
    // A redraw is not news: screen readers announce only new lines.
    el.messages.setAttribute('aria-busy', 'true');
    el.messages.replaceChildren(frag);
    el.messages.removeAttribute('aria-busy');
    renderHistoryTop();
    renderEmpty();
    if (keepView === 'bottom') {
      toBottom();
    } else if (keepView === 'prepend') {
      s.scrollTop = oldTop + (s.scrollHeight - oldHeight);
    } else if (anchorId) {
      const row = el.messages.querySelector('[data-id="' + CSS.escape(anchorId) + '"]');
      if (row) s.scrollTop += row.getBoundingClientRect().top - s.getBoundingClientRect().top - anchorTop;
    }
  }

  function renderHistoryTop() {
    const top = el['history-top'];
    const c = S.conv;
    top.replaceChildren();
    if (!c || !c.loaded || c.error || c.msgs.length === 0) return;
    if (c.loadingOlder) {
      top.append(h('p', 'loading', 'Loading earlier messages…'));
    } else if (c.more) {
      const b = h('button', 'btn subtle small', 'Show earlier messages');
      b.type = 'button';
      b.addEventListener('click', loadOlder);
      top.append(b);
    } else if (c.kind === 'room') {
      top.append(h('p', 'start-title', '#' + c.id));
      top.append(h('p', 'start-text', 'This is the beginning of the room. Everyone in #' + c.id + ' sees what is written here.'));
    } else {
      const name = nickOf(c.id) || short(c.id);
      top.append(h('p', 'start-title', name));
      top.append(h('p', 'start-text', 'This is the beginning of your direct messages with ' + name + ' (' + short(c.id) + '). Only the two of you see them.'));
    }
  }

  function renderEmpty() {
    const c = S.conv;
    let title = '';
    let text = '';
    if (!c) {
      title = 'You are not in any room';
      text = 'Join one on the left: type a name such as lobby and press Join. Everyone who joins the same name meets there.';
    } else if (!c.loaded) {
      title = 'Loading…';
    } else if (c.error) {
      title = 'This conversation could not be opened';
      text = c.error;
    } else if (c.msgs.length === 0) {
      title = 'No messages yet — say hello';
      text = c.kind === 'room'
        ? 'What you write here goes to everyone in #' + c.id + '.'
        : 'What you write here goes only to ' + (nickOf(c.id) || short(c.id)) + '.';
    }
    el.empty.hidden = !title;
    el['empty-title'].textContent = title;
    el['empty-text'].textContent = text;
    el.empty.classList.toggle('is-error', !!(c && c.error));
  }

  // A view at the bottom stays there when it changes size (the compose box
  // grows, the window or a phone's keyboard resizes it).
  let stuck = true;
  new ResizeObserver(() => {
    if (stuck) el.scroller.scrollTop = el.scroller.scrollHeight;
  }).observe(el.scroller);

  el.scroller.addEventListener('scroll', () => {
    stuck = atBottom();
    if (atBottom() && S.unseen) {
      S.unseen = 0;
      renderJump();
    }
    if (el.scroller.scrollTop < 300) loadOlder();
  }, { passive: true });

  el.jump.addEventListener('click', toBottom);

  // ---------- rendering: header, lists, people, you ----------

  function renderHeader() {
    const c = S.conv;
    const title = el['conv-title'];
    const sub = el['conv-sub'];
    title.replaceChildren();
    sub.textContent = '';
    el['leave-btn'].hidden = !c || c.kind !== 'room';
    el['invite-btn'].hidden = !c || c.kind !== 'room';
    el.compose.hidden = !c || !!c.error;
    if (!c) {
      title.textContent = 'Parley';
      return;
    }
    if (c.kind === 'room') {
      title.append(h('span', 'hash', '#'), document.createTextNode(c.id));
      const here = S.peers.filter((p) => p.online && (p.rooms || []).includes(c.id)).length;
      sub.textContent = here === 0 ? 'Only you here right now' : 'You and ' + plural(here, 'other', 'others') + ' here';
      el.text.placeholder = 'Message #' + c.id;
    } else {
      const nick = nickOf(c.id);
      title.append(document.createTextNode(nick || 'Direct message'), h('span', 'pid', short(c.id)));
      title.title = c.id;
      const p = peerInfo(c.id);
      sub.textContent = 'Direct message · ' + (p && p.online ? 'online, ' + pathLabel(p) : 'offline: messages wait and are delivered later');
      el.text.placeholder = 'Message ' + (nick || short(c.id));
    }
  }

  // fill rebuilds a list from build() unless what it shows (sig) is the
  // same as last time: rebuilding under the pointer would lose a click, and
  // the lists are refreshed often.
  const sigs = new WeakMap();
  function fill(list, sig, build) {
    const key = JSON.stringify(sig);
    if (sigs.get(list) === key) return;
    sigs.set(list, key);
    list.replaceChildren(...build());
  }

  function renderLists() {
    const c = S.conv;
    // Rooms
    fill(el['room-list'], S.rooms.map((r) => [r.room, r.unread, isCurrent('room', r.room)]), () => S.rooms.map(roomRow));
    el['rooms-empty'].hidden = S.rooms.length > 0;

    // DMs: the conversations, and the one being started
    const list = S.dms.slice();
    if (c && c.kind === 'dm' && !list.some((d) => d.peer === c.id)) {
      list.unshift({ peer: c.id, nick: nickOf(c.id), unread: 0, last: null });
    }
    const dmSig = list.map((d) => {
      const p = peerInfo(d.peer);
      return [d.peer, d.nick || nickOf(d.peer), d.unread, isCurrent('dm', d.peer), !!(p && p.online),
        d.last ? [d.last.own, d.last.text] : null];
    });
    fill(el['dm-list'], dmSig, () => list.map(dmRow));
    el['dms-empty'].hidden = list.length > 0;

    // Unread elsewhere: in the title and on the menu button
    let total = 0;
    for (const r of S.rooms) if (!isCurrent('room', r.room)) total += r.unread || 0;
    for (const d of S.dms) if (!isCurrent('dm', d.peer)) total += d.unread || 0;
    document.title = (total ? '(' + total + ') ' : '') + (c ? (c.kind === 'room' ? '#' + c.id : nickOf(c.id) || short(c.id)) + ' · ' : '') + 'Parley';
    el['nav-badge'].hidden = total === 0;
  }

  function roomRow(r) {
    const cur = isCurrent('room', r.room);
    const li = h('li');
    const b = h('button', 'nav-item' + (cur ? ' active' : '') + (r.unread && !cur ? ' unread' : ''));
    b.type = 'button';
    b.dataset.room = r.room;
    if (cur) b.setAttribute('aria-current', 'page');
    b.append(h('span', 'hash', '#'), h('span', 'label', r.room));
    if (r.unread && !cur) b.append(badge(r.unread));
    b.addEventListener('click', () => openView({ kind: 'room', id: r.room }));
    li.append(b);
    return li;
  }

  function dmRow(d) {
    const cur = isCurrent('dm', d.peer);
    const li = h('li');
    const b = h('button', 'nav-item dm' + (cur ? ' active' : '') + (d.unread && !cur ? ' unread' : ''));
    b.type = 'button';
    b.dataset.peer = d.peer;
    if (cur) b.setAttribute('aria-current', 'page');
    const p = peerInfo(d.peer);
    const av = avatar(d.nick || nickOf(d.peer), d.peer, 'small');
    if (p && p.online) av.classList.add('online');
    const txt = h('span', 'dm-text');
    const line = h('span', 'dm-line');
    const name = d.nick || nickOf(d.peer);
    line.append(name ? h('span', 'label', name) : h('span', 'label anon', 'unnamed'), h('span', 'pid', short(d.peer)));
    txt.append(line);
    if (d.last && d.last.text) {
      txt.append(h('span', 'preview', (d.last.own ? 'You: ' : '') + d.last.text.split('\n')[0]));
    }
    b.title = d.peer;
    b.append(av, txt);
    if (d.unread && !cur) b.append(badge(d.unread));
    b.addEventListener('click', () => openView({ kind: 'dm', id: d.peer }));
    li.append(b);
    return li;
  }

  function badge(n) {
    const b = h('span', 'badge', n > 99 ? '99+' : String(n));
    b.setAttribute('aria-label', plural(n, 'unread message', 'unread messages'));
    return b;
  }

  const pathHelp = {
    lan: 'On your local network',
    direct: 'Connected directly over the internet',
    'hole-punched': 'Connected directly, through both sides\' firewalls',
    relayed: 'Connected through a relay: works everywhere, a little slower',
  };

  function pathLabel(p) {
    if (!p.online) return 'offline';
    if (p.path === 'relayed') return p.relay ? 'relayed via ' + short(p.relay) : 'relayed';
    return p.path || 'connected';
  }

  // routeHelp names the address family and transport: " (IPv6, QUIC)".
  function routeHelp(p) {
    const names = { ip4: 'IPv4', ip6: 'IPv6', tcp: 'TCP', quic: 'QUIC' };
    const parts = [p.family, p.transport].filter(Boolean).map((x) => names[x] || x);
    return parts.length ? ' (' + parts.join(', ') + ')' : '';
  }

  function personRow(p) {
    const li = h('li');
    const b = h('button', 'person' + (p.online ? ' online' : ' offline'));
    b.type = 'button';
    b.dataset.peer = p.peer;
    const nick = p.nick || nickOf(p.peer);
    b.title = 'Send ' + (nick || short(p.peer)) + ' a direct message';
    const av = avatar(nick, p.peer, 'small');
    if (p.online) av.classList.add('online');
    const txt = h('span', 'person-text');
    txt.append(who(nick, p.peer, false));
    const path = h('span', 'path ' + (p.online ? 'path-' + (p.path || 'none') : 'path-offline'), pathLabel(p));
    path.title = p.online ? (pathHelp[p.path] || '') + routeHelp(p) : 'Not connected right now';
    txt.append(path);
    b.append(av, txt);
    b.addEventListener('click', () => openView({ kind: 'dm', id: p.peer }));
    li.append(b);
    return li;
  }

  function byPresence(a, b) {
    if (a.online !== b.online) return a.online ? -1 : 1;
    return (nickOf(a.peer) || '~').localeCompare(nickOf(b.peer) || '~') || a.peer.localeCompare(b.peer);
  }

  const personSig = (p) => [p.peer, p.nick || nickOf(p.peer), p.online, p.path, p.relay || '', p.family || '', p.transport || ''];

  function renderPeople() {
    const c = S.conv;
    let members;
    if (c && c.kind === 'room') {
      el['people-title'].textContent = 'In #' + c.id;
      members = S.peers.filter((p) => (p.rooms || []).includes(c.id));
    } else {
      el['people-title'].textContent = 'People';
      members = S.peers.slice();
    }
    members.sort(byPresence);
    const me = S.me;
    fill(el['people-list'], [me && [me.peer, me.nick], members.map(personSig)], () => {
      const out = [];
      if (me) {
        const li = h('li');
        const row = h('div', 'person self online');
        const av = avatar(me.nick, me.peer, 'small');
        av.classList.add('online');
        const txt = h('span', 'person-text');
        txt.append(who(me.nick, me.peer, true), h('span', 'path', 'this computer'));
        row.append(av, txt);
        li.append(row);
        out.push(li);
      }
      return out.concat(members.map(personRow));
    });
    const rest = c && c.kind === 'room'
      ? S.peers.filter((p) => p.online && !(p.rooms || []).includes(c.id)).sort(byPresence)
      : [];
    fill(el['others-list'], rest.map(personSig), () => rest.map(personRow));
    el['others-list'].hidden = el['others-title'].hidden = rest.length === 0;
    el['people-count'].textContent = String(members.filter((p) => p.online).length + 1);
  }

  function connText(n) {
    return n > 0 ? 'Connected to ' + plural(n, 'peer', 'peers') : 'No peers yet';
  }

  function renderMe() {
    const me = S.me;
    if (!me) return;
    el['me-avatar'].className = 'avatar hue-' + hue(me.peer);
    el['me-avatar'].textContent = initial(me.nick, me.peer);
    el['me-nick'].replaceChildren(who(me.nick, me.peer, false));
    el['me-status'].textContent = connText(me.connected);
    el['me-card'].classList.toggle('connected', me.connected > 0);

    // The dialog
    el['me-conn'].textContent = me.connected > 0
      ? 'Connected to ' + plural(me.connected, 'peer', 'peers') + '. Messages go out as you send them.'
      : 'No peers yet: this node is not connected to anyone. People on your local network appear by themselves; to chat with a friend elsewhere, give them one of the addresses below.';
    el['me-conn'].classList.toggle('warn', me.connected === 0);
    if (document.activeElement !== el['nick-input']) el['nick-input'].value = me.nick || '';
    el['me-peer'].textContent = me.peer;
    fillAddrs(el['me-addrs'], me.addrs || [], 'This node has no addresses yet.');
    const relay = me.relay_addrs || [];
    el['me-relay'].textContent = relay.length
      ? 'Reachable through a relay: friends whose network blocks direct connections can still reach you at these addresses.'
      : 'No relay reservation. Friends reach you directly, when your network lets them.';
    fillAddrs(el['me-relay-addrs'], relay, '');
    renderBanner();
    renderPeople();
  }

  function isLocalOnly(a) {
    return /^\/ip4\/127\.|^\/ip6\/::1\//.test(a);
  }

  function fillAddrs(ul, addrs, none) {
    fill(ul, addrs, () => addrRows(addrs, none));
  }

  function addrRows(addrs, none) {
    const out = [];
    if (!addrs.length && none) out.push(h('li', 'hint', none));
    // Addresses others can use first; loopback ones only work here.
    const sorted = addrs.slice().sort((a, b) => isLocalOnly(a) - isLocalOnly(b));
    for (const a of sorted) {
      const li = h('li', 'copy-row');
      const box = h('div', 'addr');
      box.append(h('code', 'mono wrap', a));
      if (isLocalOnly(a)) box.append(h('span', 'addr-note', 'Works only on this computer'));
      li.append(box);
      const b = h('button', 'btn small copy', 'Copy');
      b.type = 'button';
      b.addEventListener('click', () => copy(a, b));
      li.append(b);
      out.push(li);
    }
    return out;
  }

  function renderBanner() {
    let text = '';
    let action = '';
    if (S.running && !S.streamUp) {
      text = 'Reconnecting to Parley… Is it still running? Messages will appear once it answers again.';
    } else if (S.me && S.me.connected === 0) {
      text = 'No peers yet: nobody is connected to you, so messages wait here. People on your local network show up by themselves; to chat with a friend elsewhere, send them your address.';
      action = 'Show my address';
    }
    el.banner.hidden = !text;
    el['banner-text'].textContent = text;
    el['banner-action'].hidden = !action;
    el['banner-action'].textContent = action;
    el.banner.classList.toggle('offline', S.running && !S.streamUp);
  }

  el['banner-action'].addEventListener('click', openMe);

  // ---------- actions ----------

  let lastTooLong = '';
  function tooLong(n) {
    lastTooLong = 'Too long to send: ' + n + ' bytes, the limit is ' + LIMIT + '. Remove ' + (n - LIMIT) + ' bytes.';
    return lastTooLong;
  }

  function updateBytes() {
    const n = bytes(el.text.value);
    el.bytes.textContent = n + ' / ' + LIMIT + ' bytes';
    el.bytes.classList.toggle('near', n > LIMIT * 0.9 && n <= LIMIT);
    el.bytes.classList.toggle('over', n > LIMIT);
    if (n > LIMIT) {
      el['compose-error'].textContent = tooLong(n);
    } else if (el['compose-error'].textContent === lastTooLong) {
      el['compose-error'].textContent = '';
    }
    el.send.disabled = n > LIMIT;
    // Grow with the text, up to a point (CSS field-sizing where supported).
    el.text.rows = Math.min(8, el.text.value.split('\n').length);
  }

  let sending = false;

  async function send() {
    const c = S.conv;
    const text = el.text.value;
    if (!c || sending || !text.trim()) return;
    const n = bytes(text);
    if (n > LIMIT) {
      el['compose-error'].textContent = tooLong(n);
      return;
    }
    sending = true;
    el.send.disabled = true;
    el['compose-error'].textContent = '';
    // The box empties at once; the text comes back if sending fails.
    el.text.value = '';
    updateBytes();
    try {
      if (c.kind === 'room') {
        const r = await api('POST', 'api/v1/rooms/' + enc(c.id) + '/messages', { text });
        if (S.conv === c && !c.byId.has(r.id)) {
          const early = S.early.get(r.id);
          addLive(c, {
            id: r.id, from: S.me.peer, nick: S.me.nick, text, sent_at: new Date().toISOString(), own: true,
            pending: !early, failed: !!early, reason: early ? early.reason : '',
          });
        }
      } else {
        const r = await api('POST', 'api/v1/dms/' + enc(c.id) + '/messages', { text });
        if (S.conv === c && !c.byId.has(r.id)) {
          const early = S.early.get(r.id);
          S.early.delete(r.id);
          addLive(c, {
            id: r.id, from: S.me.peer, nick: S.me.nick, text, sent_at: new Date().toISOString(), own: true,
            state: early ? early.state : 'sending', reason: early ? early.reason : '',
          });
        }
        refreshDMs();
      }
      toBottom();
    } catch (err) {
      if (!el.text.value) {
        el.text.value = text;
        updateBytes();
      }
      el['compose-error'].textContent = 'Not sent: ' + err.message;
    } finally {
      sending = false;
      el.send.disabled = bytes(el.text.value) > LIMIT;
      el.text.focus();
    }
  }

  el.text.addEventListener('input', updateBytes);
  el.text.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      send();
    }
  });
  el.compose.addEventListener('submit', (e) => {
    e.preventDefault();
    send();
  });

  const INVITE = 'parley://join/';

  // joinRoom joins a room by name or by invite link.
  async function joinRoom(name, err) {
    try {
      const r = await api('POST', 'api/v1/rooms', { room: name });
      S.rooms = r.rooms || S.rooms;
      el['join-input'].value = '';
      openView({ kind: 'room', id: r.room || name });
      refreshPeers();
    } catch (ex) {
      err.textContent = 'Could not join: ' + ex.message;
      err.hidden = false;
    }
  }

  // typedRoom is the room name in the join field, or '' after saying
  // what is wrong with it.
  function typedRoom(err) {
    let name = el['join-input'].value.trim();
    if (name.startsWith('#')) name = name.slice(1);
    err.hidden = true;
    if (!name) return '';
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(name)) {
      err.textContent = 'A room name is 1 to 64 letters, digits, dots, dashes or underscores, without spaces.';
      err.hidden = false;
      return '';
    }
    return name;
  }

  // showInvite puts a room's invite link where it can be copied.
  function showInvite(inv) {
    const what = inv.private
      ? 'Invite link to the private room #' + inv.room + '. Whoever has it can read the room: send it only to members.'
      : 'Invite link to #' + inv.room + ': your friend opens it with parley join LINK, or pastes it into Join.';
    window.prompt(what, inv.link);
  }

  el['join-form'].addEventListener('submit', async (e) => {
    e.preventDefault();
    const err = el['join-error'];
    const typed = el['join-input'].value.trim();
    if (typed.startsWith(INVITE)) {
      err.hidden = true;
      joinRoom(typed, err);
      return;
    }
    const name = typedRoom(err);
    if (name) joinRoom(name, err);
  });

  el['private-btn'].addEventListener('click', async () => {
    const err = el['join-error'];
    const name = typedRoom(err);
    if (!name) {
      if (err.hidden) {
        err.textContent = 'Type the new private room\'s name first.';
        err.hidden = false;
      }
      return;
    }
    try {
      const inv = await api('POST', 'api/v1/private', { room: name });
      await loadRooms();
      el['join-input'].value = '';
      openView({ kind: 'room', id: inv.room });
      showInvite(inv);
    } catch (ex) {
      err.textContent = 'Could not create the private room: ' + ex.message;
      err.hidden = false;
    }
  });

  el['invite-btn'].addEventListener('click', async () => {
    const c = S.conv;
    if (!c || c.kind !== 'room') return;
    try {
      showInvite(await api('GET', 'api/v1/rooms/' + enc(c.id) + '/invite'));
    } catch (ex) {
      toast('Could not make an invite link: ' + ex.message, 'error');
    }
  });

  // Leaving takes two clicks, so a slip of the finger keeps the room.
  let leaveArmed = null;
  function resetLeave() {
    clearTimeout(leaveArmed);
    leaveArmed = null;
    el['leave-btn'].textContent = 'Leave';
    el['leave-btn'].classList.remove('danger');
  }
  el['leave-btn'].addEventListener('click', async () => {
    const c = S.conv;
    if (!c || c.kind !== 'room') return;
    if (!leaveArmed) {
      el['leave-btn'].textContent = 'Leave #' + c.id + '?';
      el['leave-btn'].classList.add('danger');
      leaveArmed = setTimeout(resetLeave, 4000);
      return;
    }
    resetLeave();
    try {
      const r = await api('DELETE', 'api/v1/rooms/' + enc(c.id));
      S.rooms = r.rooms || [];
      openView(firstView());
      toast('You left #' + c.id + '. Join it again any time.');
    } catch (ex) {
      toast('Could not leave #' + c.id + ': ' + ex.message, 'error');
    }
  });

  el['nick-form'].addEventListener('submit', async (e) => {
    e.preventDefault();
    const err = el['nick-error'];
    err.hidden = true;
    const nick = el['nick-input'].value.trim();
    if (!nick || nick === S.me.nick) return;
    try {
      const r = await api('PUT', 'api/v1/nick', { nick });
      S.me.nick = r.nick;
      el['nick-input'].blur();
      renderMe();
      toast('Your name is now ' + r.nick + '.');
    } catch (ex) {
      err.textContent = ex.message;
      err.hidden = false;
    }
  });

  async function copy(text, button) {
    let ok = false;
    try {
      await navigator.clipboard.writeText(text);
      ok = true;
    } catch (e) {
      // Not a secure context, or no permission: the old way.
      const ta = h('textarea', 'offscreen');
      ta.value = text;
      document.body.append(ta);
      ta.select();
      try {
        ok = document.execCommand('copy');
      } catch (e2) {
        ok = false;
      }
      ta.remove();
    }
    const was = button.textContent;
    button.textContent = ok ? 'Copied' : 'Select and copy it';
    button.classList.toggle('done', ok);
    setTimeout(() => {
      button.textContent = was;
      button.classList.remove('done');
    }, 1500);
  }

  for (const b of document.querySelectorAll('[data-copy]')) {
    b.addEventListener('click', () => copy($(b.dataset.copy).textContent, b));
  }

  function openMe() {
    closeDrawers();
    renderMe();
    if (!el['me-dialog'].open) el['me-dialog'].showModal();
    refreshInfo();
  }
  el['me-card'].addEventListener('click', openMe);

  // ---------- drawers (phone width) ----------

  function closeDrawers() {
    document.body.classList.remove('nav-open', 'people-open');
  }
  el['nav-open'].addEventListener('click', () => {
    document.body.classList.remove('people-open');
    document.body.classList.add('nav-open');
  });
  el['people-open'].addEventListener('click', () => {
    document.body.classList.remove('nav-open');
    document.body.classList.toggle('people-open');
  });
  el['nav-close'].addEventListener('click', closeDrawers);
  el['people-close'].addEventListener('click', closeDrawers);
  el.scrim.addEventListener('click', closeDrawers);
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') closeDrawers();
  });

  // ---------- toasts ----------

  function toast(text, kind) {
    if (!text) return;
    const t = h('div', 'toast' + (kind ? ' ' + kind : ''));
    t.setAttribute('role', kind === 'error' ? 'alert' : 'status');
    t.append(h('p', '', text));
    const x = h('button', 'icon-btn', '×');
    x.type = 'button';
    x.setAttribute('aria-label', 'Dismiss');
    x.addEventListener('click', () => t.remove());
    t.append(x);
    el.toasts.append(t);
    while (el.toasts.children.length > 4) el.toasts.firstChild.remove();
    setTimeout(() => t.remove(), kind === 'error' ? 12000 : 6000);
  }

  updateBytes();
  boot();
})();
