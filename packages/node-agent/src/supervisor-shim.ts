/**
 * The shell snippet between the supervisor and the task's argv (see supervisor.ts). It runs as
 * the task user, blocked in `read` (a builtin: no user code) until the supervisor has moved it
 * into its cgroup and says "go"; then `exec` replaces it with the task's argv, same pid, stdin
 * from /dev/null. Anything else on stdin (the supervisor died first: EOF) ends it with 125.
 *
 * Used as `/bin/sh -c SHIM_SCRIPT omega-task <argv...>`: `"$@"` is the argv, never re-split.
 */
export const SHIM_SCRIPT = 'IFS= read -r go || exit 125; [ "$go" = go ] || exit 125; exec "$@" </dev/null';
