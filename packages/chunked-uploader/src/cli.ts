#!/usr/bin/env node
/**
 * The `chunked-upload` executable; `chunked-upload --help` says how to use it.
 *
 * @packageDocumentation
 */
import { main } from './lib/cli.node.ts';

main();
