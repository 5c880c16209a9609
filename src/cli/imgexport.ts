#!/usr/bin/env node
import { UsageError } from '../core/errors.js';
import { runCommand } from './command.js';

const USAGE = `Usage: imgexport ... (not available yet)
`;

await runCommand({
  usage: USAGE,
  options: {},
  async run() {
    throw new UsageError('imgexport is not available yet');
  },
});
