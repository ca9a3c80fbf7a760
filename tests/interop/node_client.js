// Sends the records of a JSON file ([[tag, record], ...]) to a Forward server with one of
// Node's Fluentd loggers, waiting for the server's ack of every chunk, then exits 0; any
// error or timeout exits 1.
//
// node node_client.js <fluent-logger|@fluent-org/logger> <eventMode> <port> <records.json>
'use strict';

const fs = require('fs');

const DEADLINE_MS = 60000;

function fail(message) {
  process.stderr.write(`node client: ${message}\n`);
  process.exit(1);
}

// Even records keep the logger's default time (whole seconds); odd ones carry an
// EventTime, so both time encodings go through every mode.
function timeOf(EventTime, index) {
  return index % 2 === 1 ? EventTime.now() : undefined;
}

async function withFluentLogger(mode, port, records) {
  const FluentSender = require('fluent-logger/lib/sender');
  const EventTime = require('fluent-logger').EventTime;
  const sender = new FluentSender(null, {
    host: '127.0.0.1',
    port,
    eventMode: mode,
    requireAckResponse: true,
    ackResponseTimeout: 20000,
    enableReconnect: false,
    internalLogger: { info() {}, error: (...args) => process.stderr.write(args.join(' ') + '\n') },
  });
  sender.on('error', (error) => fail(`fluent-logger error: ${error}`));
  // Batches of 50, each awaited, so the chunked modes send several chunks.
  for (let start = 0; start < records.length; start += 50) {
    const batch = records.slice(start, start + 50).map(([tag, record], offset) => {
      const time = timeOf(EventTime, start + offset);
      return new Promise((resolve, reject) => {
        const done = (error) => (error ? reject(error) : resolve());
        if (time === undefined) {
          sender.emit(tag, record, done);
        } else {
          sender.emit(tag, record, time, done);
        }
      });
    });
    await Promise.all(batch);
  }
  await new Promise((resolve) => sender.end(null, null, resolve));
}

async function withFluentOrgLogger(mode, port, records) {
  const { FluentClient, EventTime } = require('@fluent-org/logger');
  const client = new FluentClient(null, {
    eventMode: mode,
    socket: { host: '127.0.0.1', port, timeout: 20000, disableReconnect: true },
    ack: { ackTimeout: 20000 },
    disconnect: { waitForPending: true, waitForPendingDelay: 20000 },
  });
  client.socketOn('error', (error) => fail(`@fluent-org/logger error: ${error}`));
  await client.connect();
  for (let start = 0; start < records.length; start += 50) {
    const batch = records.slice(start, start + 50).map(([tag, record], offset) => {
      const time = timeOf(EventTime, start + offset);
      return time === undefined ? client.emit(tag, record) : client.emit(tag, record, time);
    });
    await Promise.all(batch);
  }
  await client.disconnect();
}

async function main() {
  const [library, mode, port, path] = process.argv.slice(2);
  if (!path) {
    fail('usage: node_client.js <library> <eventMode> <port> <records.json>');
  }
  const records = JSON.parse(fs.readFileSync(path, 'utf8'));
  const timer = setTimeout(() => fail(`not every record acknowledged within ${DEADLINE_MS} ms`), DEADLINE_MS);
  if (library === 'fluent-logger') {
    await withFluentLogger(mode, Number(port), records);
  } else if (library === '@fluent-org/logger') {
    await withFluentOrgLogger(mode, Number(port), records);
  } else {
    fail(`unknown library ${library}`);
  }
  clearTimeout(timer);
  process.stdout.write(`node client: ${library} ${mode}: ${records.length} records acknowledged\n`);
}

main().catch((error) => fail(String(error && error.stack ? error.stack : error)));
