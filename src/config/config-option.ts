import type { z } from 'zod';

/**
 * One configuration option: the environment variable that sets it, the zod type that reads the variable's text, the
 * text used when the variable is unset (none: the option stays undefined) and the line the docs show.
 */
export interface ConfigOption<T extends z.ZodType = z.ZodType, HasDefault extends boolean = boolean> {
  readonly env: `AVA_${string}`;
  readonly type: T;
  readonly default: HasDefault extends true ? string : undefined;
  readonly doc: string;
  /** How the docs show an unset option without a default. */
  readonly unset?: string;
  /** Whether the value is a secret: a bad one is reported without its text. */
  readonly secret?: boolean;
}

/** An option with a default, given as the variable's text (the docs show it as it is). */
export function option<T extends z.ZodType>(
  env: `AVA_${string}`,
  type: T,
  defaultText: string,
  doc: string,
  flags: { secret?: boolean } = {},
): ConfigOption<T, true> {
  return { env, type, default: defaultText, doc, ...flags };
}

/** An option that is undefined unless its variable is set; `unset` says in the docs what that means. */
export function optional<T extends z.ZodType>(
  env: `AVA_${string}`,
  type: T,
  doc: string,
  unset: string,
  flags: { secret?: boolean } = {},
): ConfigOption<T, false> {
  return { env, type, default: undefined, doc, unset, ...flags };
}

/** The value an option reads into. */
export type OptionValue<O> =
  O extends ConfigOption<infer T, infer HasDefault>
    ? HasDefault extends true
      ? z.output<T>
      : z.output<T> | undefined
    : never;

/** A subsystem's options, read. */
export type SectionValues<S> = { readonly [K in keyof S]: OptionValue<S[K]> };
