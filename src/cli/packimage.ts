#!/usr/bin/env -S node --max-semi-space-size=1
// A 1 MiB young generation: the Buffers that file data passes through are freed soon after use (peak RSS -20%).
import { packimageCommand } from '../pack/command.js';
import { runCommand } from './command.js';

await runCommand(packimageCommand);
