#!/usr/bin/env node
import { UsageError } from '../core/errors.js';
import { runCommand } from './command.js';

const USAGE = `Usage: imgimport ... (not available yet)
`;

await runCommand({
  usage: USAGE,
  options: {},
  async run() {
    throw new UsageError('imgimport is not available yet');
  },
});
