import type { LogLevel } from './config.ts';

/** Structured fields attached to a log line. */
export type LogFields = Record<string, unknown>;

/** A structured logger: one JSON object per line. */
export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every line. */
  child(fields: LogFields): Logger;
}

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

/**
 * A JSON-lines logger (what log shippers and `jq` read); errors are expanded
 * to name, code, message and stack so they survive serialisation.
 *
 * @example
 * ```ts
 * const log = createLogger('info');
 * log.info('listening', { url: 'http://127.0.0.1:8080' });
 * ```
 */
export function createLogger(
  level: LogLevel,
  write: (line: string) => void = (line) => process.stdout.write(line),
  bound: LogFields = {},
): Logger {
  const emit = (at: Exclude<LogLevel, 'silent'>, msg: string, fields?: LogFields): void => {
    if (RANK[at] < RANK[level]) return;
    const record: LogFields = { time: new Date().toISOString(), level: at, msg, ...bound };
    for (const [key, value] of Object.entries(fields ?? {})) record[key] = serialise(value);
    write(`${JSON.stringify(record)}\n`);
  };
  return {
    debug: (msg, fields) => emit('debug', msg, fields),
    info: (msg, fields) => emit('info', msg, fields),
    warn: (msg, fields) => emit('warn', msg, fields),
    error: (msg, fields) => emit('error', msg, fields),
    child: (fields) => createLogger(level, write, { ...bound, ...fields }),
  };
}

function serialise(value: unknown): unknown {
  if (!(value instanceof Error)) return value;
  const code = (value as { code?: unknown }).code;
  return {
    name: value.name,
    message: value.message,
    ...(code === undefined ? {} : { code }),
    ...(value.cause === undefined ? {} : { cause: serialise(value.cause) }),
    stack: value.stack,
  };
}
