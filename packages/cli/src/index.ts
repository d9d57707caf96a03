export { type Command, type CommandContext, commandHelp, type OptionSpec } from './command.ts';
export { CliError, type CliErrorCode, ExitCode } from './errors.ts';
export { bytes, type Json, toJson } from './json.ts';
export { COMMANDS, type MainOptions, main } from './main.ts';
export { formatBytes, Terminal, type TerminalStreams } from './terminal.ts';
