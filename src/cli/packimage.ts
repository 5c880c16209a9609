#!/usr/bin/env node
import { packimageCommand } from '../pack/command.js';
import { runCommand } from './command.js';

await runCommand(packimageCommand);
