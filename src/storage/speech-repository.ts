import { createHash } from 'node:crypto';
import { Binary } from 'mongodb';
import type { Database } from './database.js';
import { insertNew } from './insert-new.js';
import type { AudioFormat, SpeechDocument } from './reply-document.js';

/** Reads and writes `audio`: each reply's speech, synthesised once per voice. */
export class SpeechRepository {
  constructor(private readonly database: Database) {}

  /** The cached speech of `text` for a message, voice and format, or null (none, or made from another text). */
  async get(messageId: string, voice: string, format: AudioFormat, text: string): Promise<Buffer | null> {
    const doc = await this.database.audio.findOne({ _id: keyOf(messageId, voice, format) });
    return doc && doc.textSha256 === sha256(text) ? Buffer.from(doc.data.buffer) : null;
  }

  /** Whether speech of `text` is cached for a message, voice and format, reading only its text hash. */
  async has(messageId: string, voice: string, format: AudioFormat, text: string): Promise<boolean> {
    const doc = await this.database.audio.findOne(
      { _id: keyOf(messageId, voice, format) },
      { projection: { textSha256: 1 } },
    );
    return doc?.textSha256 === sha256(text);
  }

  /** Caches speech; a second writer of the same key keeps the first (the insert's duplicate key). */
  async put(messageId: string, voice: string, format: AudioFormat, text: string, audio: Buffer): Promise<void> {
    const doc: SpeechDocument = {
      _id: keyOf(messageId, voice, format),
      messageId,
      voice,
      format,
      textSha256: sha256(text),
      data: new Binary(audio),
      createdAt: new Date(),
    };
    await insertNew(this.database.audio, [doc], `caching the speech of ${messageId}`);
  }
}

function keyOf(messageId: string, voice: string, format: AudioFormat): string {
  return `${messageId}:${voice}:${format}`;
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
