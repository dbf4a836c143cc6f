import { describe, expect, it } from 'vitest';
import { failedReplyError } from '../../src/api/http-error.js';

describe('failedReplyError', () => {
  it("answers a failed reply by whose failure it was: the message's 422, AVA's 500, with the reply's code", () => {
    for (const code of ['ERR_CONTRACT', 'ERR_JOB_ID', 'ERR_AUDIO_SILENT', 'ERR_AUDIO_NOT_YOURS'])
      expect(failedReplyError({ code, message: 'm' }), code).toMatchObject({ status: 422, code, message: 'm' });
    for (const code of ['ERR_GENERATION', 'ERR_HANDLER', 'ERR_RETRIES_EXHAUSTED', 'ERR_STALLED', 'ERR_RECOGNIZER'])
      expect(failedReplyError({ code, message: 'm' }), code).toMatchObject({ status: 500, code });
    expect(failedReplyError(undefined)).toMatchObject({ status: 500, code: 'ERR_INTERNAL' });
  });
});
