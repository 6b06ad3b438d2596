// Reads a saved discobot chat stream (the SSE of GET …/threads/{threadId}/stream) the way a
// browser built on the Vercel AI SDK would, and prints the UI messages it rebuilds.
//
// usage: node read-ui-stream.mjs <file.sse>
//
// stdout: a JSON array of the messages in stream order: the user messages announced by
// `data-user-message` chunks and the assistant messages the `ai` package's own
// `readUIMessageStream` rebuilt from the chunks (its last snapshot of each message).
// Exit status 1 with the error on stderr when the file is not a valid stream, a chunk fails the
// package's `uiMessageChunkSchema` (what `DefaultChatTransport` checks), the package rejects a
// chunk (`onError`), or the stream carries an `error` chunk.
//
// Why not the package's `parseJsonEventStream`: it drops the SSE event name, and our stream
// mixes `chunk` frames with `history-*` frames (whole UIMessages) and `ping`s, which only the
// event name tells apart. So frames are parsed with `eventsource-parser`, the SSE parser the
// package itself uses, and each chunk is validated with the package's schema.

import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { readUIMessageStream, uiMessageChunkSchema } from 'ai';
import { EventSourceParserStream } from 'eventsource-parser/stream';

/** Frames that are not UI message chunks and carry nothing for the rebuilt messages. */
const SKIPPED_EVENTS = new Set(['history-start', 'history-message', 'history-end', 'ping']);

/**
 * Chunks about the thread rather than one message: the discobot UI handles them itself, so
 * they are not fed into the assistant message (where the SDK would add them as data parts).
 */
const THREAD_CHUNKS = new Set([
  'data-completion-status',
  'data-thread-update',
  'data-thread-resume',
  'data-user-message',
]);

async function main() {
  const path = process.argv[2];
  if (!path || process.argv.length > 3) {
    throw new Error('usage: node read-ui-stream.mjs <file.sse>');
  }

  // 1. The chunk frames, parsed and validated, in order.
  const frames = Readable.toWeb(createReadStream(path))
    .pipeThrough(new TextDecoderStream())
    .pipeThrough(new EventSourceParserStream({ onError: 'terminate' }));
  const schema = uiMessageChunkSchema();
  const chunks = [];
  for await (const frame of frames) {
    if (SKIPPED_EVENTS.has(frame.event)) {
      continue;
    }
    // The relay writes its own `{"type":"error"}` frame without an event name when the
    // agent stream breaks; it is a chunk like the others.
    if (frame.event !== 'chunk' && frame.event !== undefined) {
      throw new Error(`unexpected SSE event ${JSON.stringify(frame.event)}`);
    }
    let value;
    try {
      value = JSON.parse(frame.data);
    } catch (error) {
      throw new Error(`chunk ${frame.id ?? '(no id)'} is not JSON: ${error.message}`);
    }
    const checked = await schema.validate(value);
    if (!checked.success) {
      throw new Error(
        `chunk ${frame.id ?? '(no id)'} fails the ai package's uiMessageChunkSchema: ` +
          `${frame.data}\n${String(checked.error?.message ?? checked.error).slice(0, 2000)}`,
      );
    }
    chunks.push(checked.value);
  }
  if (chunks.length === 0) {
    throw new Error('the stream has no chunk frames');
  }

  // 2. The order of the messages: user messages as announced, assistant ones by their start.
  const order = [];
  const userMessages = new Map();
  const messageChunks = [];
  for (const chunk of chunks) {
    if (chunk.type === 'data-user-message') {
      const message = chunk.data?.message;
      if (!message?.id) {
        throw new Error(`data-user-message without a message id: ${JSON.stringify(chunk)}`);
      }
      userMessages.set(message.id, message);
      order.push(message.id);
      continue;
    }
    if (THREAD_CHUNKS.has(chunk.type)) {
      continue;
    }
    if (chunk.type === 'start' && chunk.messageId != null && !order.includes(chunk.messageId)) {
      order.push(chunk.messageId);
    }
    messageChunks.push(chunk);
  }

  // 3. The package rebuilds the assistant messages; any error it reports fails the run.
  const errors = [];
  const stream = new ReadableStream({
    start(controller) {
      for (const chunk of messageChunks) {
        controller.enqueue(chunk);
      }
      controller.close();
    },
  });
  const rebuilt = new Map();
  // An `error` chunk reaches `onError` too, and with `terminateOnError` the iteration throws.
  for await (const snapshot of readUIMessageStream({
    stream,
    terminateOnError: true,
    onError: (error) => errors.push(error),
  })) {
    rebuilt.set(snapshot.id, snapshot);
  }
  if (errors.length > 0) {
    throw errors[0];
  }
  for (const id of rebuilt.keys()) {
    if (!order.includes(id)) {
      order.push(id);
    }
  }
  const messages = order.map((id) => rebuilt.get(id) ?? userMessages.get(id));
  process.stdout.write(`${JSON.stringify(messages, null, 2)}\n`);
}

main().catch((error) => {
  process.stderr.write(`read-ui-stream: ${error?.stack ?? error}\n`);
  process.exitCode = 1;
});
