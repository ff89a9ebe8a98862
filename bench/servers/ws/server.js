// A bare Node `ws` fan-out server, the smallest one a user would write, for bench/ to compare with.
//
// What it does:
//   - WebSocket endpoint on `/`. A client joins rooms with the query `?rooms=a,b` and/or later
//     messages `{"join":"room"}`; rooms are a Map room -> Set of sockets, left on close.
//   - `POST /publish` with a JSON body {room, event, payload}: the message
//     {"room","event","payload"} is stringified once and the same string sent to every open
//     socket of the room; answers 200 {"ok":true}.
//   - A protocol-level ping every 25 s (the `ws` README's heartbeat), closing sockets that did
//     not answer the previous one: the same keep-alive period as Scopecast and Socket.IO.
// What it does not do: no history or replay, no resume after a reconnect, no offsets or loss
// detection, no authentication or authorization, no presence, no back-pressure (a slow socket
// buffers without limit), one process only. Compare its figures with that in mind.
//
// Usage: node server.js [--port N] (or PORT=N); listens on 127.0.0.1 unless HOST says otherwise.
'use strict';
const http = require('node:http');
const { WebSocketServer, WebSocket } = require('ws');

const portArg = process.argv.indexOf('--port');
const port = Number(portArg > 0 ? process.argv[portArg + 1] : process.env.PORT || 8090);
const host = process.env.HOST || '127.0.0.1';

const rooms = new Map(); // room -> Set<WebSocket>

function join(ws, room) {
  if (typeof room !== 'string' || room === '') return;
  let set = rooms.get(room);
  if (!set) rooms.set(room, (set = new Set()));
  set.add(ws);
  ws.rooms.add(room);
}

function leave(ws) {
  for (const room of ws.rooms) {
    const set = rooms.get(room);
    set.delete(ws);
    if (set.size === 0) rooms.delete(room);
  }
}

function publish(req, res) {
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (chunk) => (body += chunk));
  req.on('end', () => {
    let msg;
    try {
      msg = JSON.parse(body);
    } catch {
      res.writeHead(400).end();
      return;
    }
    const data = JSON.stringify({ room: msg.room, event: msg.event, payload: msg.payload });
    for (const ws of rooms.get(msg.room) || []) {
      if (ws.readyState === WebSocket.OPEN) ws.send(data);
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
  });
}

const server = http.createServer((req, res) => {
  if (req.method === 'POST' && req.url === '/publish') publish(req, res);
  else res.writeHead(404).end();
});

const wss = new WebSocketServer({ server });
wss.on('connection', (ws, req) => {
  ws.rooms = new Set();
  ws.alive = true;
  const query = new URL(req.url, 'http://x').searchParams.get('rooms');
  if (query) for (const room of query.split(',')) join(ws, room);
  ws.on('message', (data) => {
    try {
      join(ws, JSON.parse(data).join);
    } catch {
      // not a join: ignored
    }
  });
  ws.on('pong', () => (ws.alive = true));
  ws.on('close', () => leave(ws));
});

const heartbeat = setInterval(() => {
  for (const ws of wss.clients) {
    if (!ws.alive) {
      ws.terminate();
      continue;
    }
    ws.alive = false;
    ws.ping();
  }
}, 25_000);
wss.on('close', () => clearInterval(heartbeat));

server.listen(port, host, () => console.log(`ws server listening on ${host}:${port}`));
