#!/usr/bin/env node
import { UsageError } from '../core/errors.js';
import { runCommand } from './command.js';

const USAGE = `Usage: packimage ... (not available yet)
`;

await runCommand({
  usage: USAGE,
  options: {},
  async run() {
    throw new UsageError('packimage is not available yet');
  },
});
