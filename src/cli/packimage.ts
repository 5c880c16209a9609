#!/usr/bin/env -S MALLOC_ARENA_MAX=1 MALLOC_MMAP_THRESHOLD_=4194304 MALLOC_TRIM_THRESHOLD_=16777216 node --max-semi-space-size=1
// Memory settings, measured (README, "How it is built"): a 1 MiB young generation frees file data soon after use;
// glibc keeps freed MiB-sized buffers for reuse instead of faulting fresh pages in for every chunk read.
import { packimageCommand } from '../pack/command.js';
import { runCommand } from './command.js';

await runCommand(packimageCommand);
