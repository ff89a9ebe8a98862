// A plain Socket.IO 4 fan-out server, the smallest one a user would write, for bench/ to compare with.
//
// What it does:
//   - Socket.IO on `/socket.io/` (WebSocket transport only, so no long-polling upgrade dance;
//     default ping every 25 s). A client joins Socket.IO rooms with the handshake query
//     `rooms=a,b` and/or later `join` events (`42["join","room"]`).
//   - `POST /publish` with a JSON body {room, event, payload}: `io.to(room).emit(event,
//     {room, payload})` (Socket.IO encodes the packet once per emit and writes it to every
//     socket of the room); answers 200 {"ok":true}.
// What it does not do: no history or replay, no connection-state recovery or resume, no offsets
// or loss detection, no authentication or authorization, no presence, no adapter (one process
// only). Compare its figures with that in mind.
//
// Usage: node server.js [--port N] (or PORT=N); listens on 127.0.0.1 unless HOST says otherwise.
'use strict';
const http = require('node:http');
const { Server } = require('socket.io');

const portArg = process.argv.indexOf('--port');
const port = Number(portArg > 0 ? process.argv[portArg + 1] : process.env.PORT || 8091);
const host = process.env.HOST || '127.0.0.1';

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
    io.to(msg.room).emit(msg.event, { room: msg.room, payload: msg.payload });
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
  });
}

const server = http.createServer((req, res) => {
  if (req.method === 'POST' && req.url === '/publish') publish(req, res);
  else res.writeHead(404).end();
});

const io = new Server(server, { transports: ['websocket'], serveClient: false });
io.on('connection', (socket) => {
  const query = socket.handshake.query.rooms;
  if (typeof query === 'string' && query) socket.join(query.split(','));
  socket.on('join', (room) => {
    if (typeof room === 'string' && room) socket.join(room);
  });
});

server.listen(port, host, () => console.log(`socket.io server listening on ${host}:${port}`));
