/**
 * The `message` of a task record (cell-state's `Task.message`): why an attempt ended, in words,
 * when the agent knows more than the reason says. Its texts come from the supervisor (exit.json's
 * `error`, `reasonMessage`) and from the errors that stop a start: they name programs, paths,
 * users and env names, never env or secret values (see supervisor-command.ts and secret env).
 */
import { MAX_TASK_MESSAGE_LENGTH } from '@omega/cell-state';

const ELLIPSIS = '...';

/**
 * `text` as a record's message: on one line (control characters, newlines included, become
 * spaces), trimmed, and cut to {@link MAX_TASK_MESSAGE_LENGTH} characters ending in `...` when
 * longer (never between the halves of a surrogate pair). A report never fails for its message.
 */
export function taskMessage(text: string): string {
  // eslint-disable-next-line no-control-regex
  const line = text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  if (line.length <= MAX_TASK_MESSAGE_LENGTH) return line;
  let cut = MAX_TASK_MESSAGE_LENGTH - ELLIPSIS.length;
  const last = line.charCodeAt(cut - 1);
  if (last >= 0xd800 && last <= 0xdbff) cut--;
  return `${line.slice(0, cut)}${ELLIPSIS}`;
}
