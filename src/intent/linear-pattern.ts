import { RE2JS } from 're2js';

/**
 * An operator's intent pattern, compiled for RE2 (re2js): matching takes time linear in the text, whatever the
 * pattern, so a badly backtracking pattern cannot stall a worker's event loop (and with it its lock renewals).
 * Matching is case-insensitive; named groups `(?<name>…)` become slots. RE2 has no look-around or back-references.
 */
export class LinearPattern {
  private constructor(
    /** The pattern as written. */
    readonly source: string,
    private readonly re: RE2JS,
    private readonly groups: readonly string[],
  ) {}

  /** The names of its named groups. */
  get names(): readonly string[] {
    return this.groups;
  }

  /** Compiles `source`; throws with RE2's reason when it is not a valid RE2 pattern. */
  static compile(source: string): LinearPattern {
    const re = RE2JS.compile(source, RE2JS.CASE_INSENSITIVE);
    return new LinearPattern(source, re, Object.keys(re.namedGroups()));
  }

  /** The slots of the first match (own properties only), or null when the pattern does not match. */
  match(text: string): Readonly<Record<string, string>> | null {
    const m = this.re.matcher(text);
    if (!m.find()) return null;
    const slots: Array<[string, string]> = [];
    for (const name of this.groups) {
      const value = m.group(name);
      if (value !== null && value !== undefined) slots.push([name, value]);
    }
    return Object.fromEntries(slots);
  }
}
