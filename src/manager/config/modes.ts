// Who may have written the configuration (security.strict_modes, as sshd's StrictModes): the manager
// starts as root and a .ts/.js configuration is executed, so a file or directory that another user
// can write is as good as that user running code as root. Looked at before anything is read.
import { realpathSync, statSync } from "node:fs";
import { dirname } from "node:path";

export interface ModeCheck {
  /** What is wrong, one line each (naming the path, its mode or owner, and the fix). */
  problems: string[];
  /** Files that are affected: their own mode or owner, or their directory's. */
  unsafe: Set<string>;
}

/**
 * Look at each file, its directory, and the configuration directories `dirs` (whose problems
 * make every file unsafe): owned by root or by us, and not writable by group or others.
 */
export function checkModes(files: readonly string[], dirs: readonly string[]): ModeCheck {
  const owners = new Set([0, process.geteuid?.() ?? 0]);
  const problems: string[] = [];
  const verdict = new Map<string, boolean>();
  const look = (path: string, kind: "file" | "directory"): boolean => {
    const known = verdict.get(path);
    if (known !== undefined) return known;
    const before = problems.length;
    lookAt(path, kind);
    verdict.set(path, problems.length === before);
    return problems.length === before;
  };
  const lookAt = (path: string, kind: "file" | "directory"): void => {
    let st;
    try {
      st = statSync(path);
    } catch {
      return; // missing: reading it says so
    }
    const mode = st.mode & 0o7777;
    const octal = `0${mode.toString(8).padStart(3, "0")}`;
    if (!owners.has(st.uid)) {
      problems.push(`${kind} ${path} belongs to uid ${st.uid}, not to root or the user the manager runs as (uid ${[...owners].join("/")}); chown root ${path}`);
    } else if (mode & 0o022 && !(kind === "directory" && mode & 0o1000)) {
      // A sticky directory (such as /tmp) lets nobody replace what they do not own; a foreign
      // file dropped into it is caught by the owner check above.
      const who = mode & 0o002 ? "everyone" : "its group";
      problems.push(`${kind} ${path} can be written by ${who} (mode ${octal}); chmod go-w ${path}`);
    }
  };
  let allSafe = true;
  for (const d of dirs) allSafe = look(d, "directory") && allSafe;
  const unsafe = new Set<string>();
  for (const f of files) {
    // A symlink is looked at where it points too: the file is read from the target's directory,
    // which may be writable by others although the link's is not.
    const real = realPath(f);
    const dirOk = look(dirname(f), "directory") && (real === f || look(dirname(real), "directory"));
    if (!look(f, "file") || !dirOk || !allSafe) unsafe.add(f);
  }
  return { problems, unsafe };
}

function realPath(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path; // missing: reading it says so
  }
}
