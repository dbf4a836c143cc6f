import { SemanticIndex } from '../embedding/semantic-index.js';
import { PeriodicTask } from '../tasks/periodic-task.js';
import type { TextEmbedder } from '../embedding/text-embedder.js';
import type { Logger } from '../logging/logger.js';
import type { KnowledgeRepository } from '../storage/knowledge-repository.js';
import type { KnowledgeEntry, KnowledgePassage } from '../storage/knowledge-entry.js';
import type { Meaning } from '../embedding/text-embedder.js';
import type { Language } from '../language/search-terms.js';
import { KnowledgeIndex, type EntryMeanings } from './knowledge-index.js';

/** Settings of the live knowledge base. */
export interface KnowledgeBaseOptions {
  /** How often the revision is checked, in ms; 0 checks only at start. */
  refreshMs: number;
  /**
   * Per language, an encoder: the entries in that language are embedded by it at each rebuild, and questions in it are
   * matched by meaning too.
   */
  semantic?: Partial<Record<Language, { embedder: TextEmbedder; floor: number }>>;
  /** Told the entries after each rebuild (a recogniser's domain model follows the knowledge base this way). */
  onRebuild?: (entries: readonly KnowledgeEntry[]) => Promise<void>;
}

/**
 * The knowledge base as a worker sees it: an index built from the database at start, rebuilt in the background when
 * the stored revision changes (an import in any process), so every worker follows within `refreshMs`. Searching never
 * waits for a rebuild; it uses the index it has.
 */
export class KnowledgeBase {
  private index = new KnowledgeIndex([]);
  private revision: string | null = null;
  private watch?: PeriodicTask;

  constructor(
    private readonly repository: KnowledgeRepository,
    private readonly opts: KnowledgeBaseOptions,
    private readonly log: Logger,
  ) {}

  /** Builds the first index and starts watching for changes. Fails (the worker does not start) when it cannot read. */
  async start(): Promise<void> {
    await this.refresh(true);
    if (this.opts.refreshMs > 0) {
      this.watch = new PeriodicTask(
        () =>
          this.refresh()
            .then(() => undefined)
            .catch((err: unknown) =>
              this.log.warn({ err }, 'knowledge base refresh failed; keeping the current index'),
            ),
        this.opts.refreshMs,
      );
      this.watch.start();
    }
  }

  /** Rebuilds the index if the stored revision differs from the one it was built from (or always, when forced). */
  async refresh(force = false): Promise<boolean> {
    const revision = await this.repository.revision();
    if (!force && revision === this.revision) return false;
    const entries = await this.repository.all();
    const meanings: Partial<Record<Language, EntryMeanings>> = {};
    for (const [language, semantic] of Object.entries(this.opts.semantic ?? {}) as Array<
      [Language, { embedder: TextEmbedder; floor: number }]
    >) {
      const own = entries.filter((e) => e.language === language);
      const vectors = await semantic.embedder.embed(own.map(entryText));
      meanings[language] = {
        index: new SemanticIndex(own.map((e, i) => ({ item: e._id, vector: vectors[i] }))),
        floor: semantic.floor,
      };
    }
    this.index = new KnowledgeIndex(entries, meanings);
    this.revision = revision;
    this.log.info({ entries: entries.length, revision }, 'knowledge index built');
    await this.opts.onRebuild?.(entries);
    return true;
  }

  /**
   * The `k` best passages for a text; with its `meaning` (its embedding by its language's encoder), by words and by
   * meaning, and with
   * `related` only entries close to it in meaning (see {@link KnowledgeIndex.top}).
   */
  top(text: string, k: number, meaning?: Meaning, related = false): KnowledgePassage[] {
    return this.index.top(text, k, meaning, related);
  }

  /** Entries in the current index and the revision it was built from. */
  get stats(): { entries: number; revision: string | null } {
    return { entries: this.index.size, revision: this.revision };
  }

  /** Stops watching. */
  async stop(): Promise<void> {
    await this.watch?.stop();
  }
}

/** What an entry is embedded as: its title, then its body. */
function entryText(e: { title: string; body: string }): string {
  return `${e.title}\n${e.body}`;
}
