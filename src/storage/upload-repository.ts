import { GridFSBucket, ObjectId } from 'mongodb';
import { StorageError } from '../errors/errors.js';
import type { Database } from './database.js';

/** What is stored beside an upload's bytes. */
export interface UploadMetadata {
  /** Its MIME type, as sniffed from its bytes (never the client's word). */
  contentType: string;
  /** The message it was uploaded for, by its scoped key: no other message, of its tenant or another, may use it. */
  messageId: string;
  tenant: string;
}

/** An upload read back. */
export interface Upload {
  bytes: Buffer;
  metadata: UploadMetadata;
}

/**
 * Owns GridFS bucket `uploads` (collections `uploads.files` and `uploads.chunks`): the audio of voice messages, far
 * too large for a Redis job, stored once by the API or the CLI and referred to by its id in the job. GridFS splits
 * each file into 255 KiB chunks, so no upload nears the 16 MiB document limit, and it works the same on MongoDB and
 * FerretDB.
 */
export class UploadRepository {
  private readonly bucket: GridFSBucket;

  constructor(database: Database) {
    this.bucket = new GridFSBucket(database.db, { bucketName: 'uploads' });
  }

  /** Stores `bytes`; returns the file id (24 hex digits) a message refers to. */
  async put(bytes: Buffer, metadata: UploadMetadata): Promise<string> {
    const upload = this.bucket.openUploadStream(metadata.messageId, { metadata });
    await new Promise<void>((resolve, reject) => {
      upload.once('finish', resolve);
      upload.once('error', (cause) =>
        reject(new StorageError(`storing the audio of ${metadata.messageId} failed: ${cause.message}`, { cause })),
      );
      upload.end(bytes);
    });
    return upload.id.toHexString();
  }

  /** The upload, or null when there is none with this id (never stored, or deleted by retention). */
  async get(fileId: string): Promise<Upload | null> {
    // The download reads the file document itself (its `file` event) before the chunks: one lookup, not two.
    const download = this.bucket.openDownloadStream(new ObjectId(fileId));
    let metadata: UploadMetadata | undefined;
    download.once('file', (file: { metadata?: UploadMetadata }) => (metadata = file.metadata));
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of download) chunks.push(chunk as Buffer);
    } catch (err) {
      if (err instanceof Error && err.message.startsWith('FileNotFound')) return null;
      throw err;
    }
    return metadata ? { bytes: Buffer.concat(chunks), metadata } : null;
  }

  /** Deletes an upload and its chunks; deleting one that is gone is not an error. */
  async delete(fileId: string): Promise<void> {
    await this.bucket.delete(new ObjectId(fileId)).catch((err: unknown) => {
      if (!(err instanceof Error && /not found/i.test(err.message))) throw err;
    });
  }

  /** Deletes the uploads stored before `cutoff`; returns how many. */
  async deleteOlderThan(cutoff: Date): Promise<number> {
    const old = await this.bucket.find({ uploadDate: { $lt: cutoff } }, { projection: { _id: 1 } }).toArray();
    for (const file of old) await this.delete(file._id.toHexString());
    return old.length;
  }
}
