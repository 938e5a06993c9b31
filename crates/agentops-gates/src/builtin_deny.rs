// The built-in command deny list, read by the crate and by its build script
// (which compiles each pattern to a DFA ahead of time): `include!`d, so it is
// plain items only.

/// (rule, pattern, reason) of the built-in command deny list.
const DEFAULT_DENY: &[(&str, &str, &str)] = &[
    (
        "force-push",
        r"\bgit\b[^;&|\n]*\bpush\b[^;&|\n]*(\s--force(-with-lease)?\b|\s-[a-zA-Z]*f[a-zA-Z]*\b|\s\+[^\s]+)",
        "force-pushing rewrites history others may have pulled. Push to a new branch, or ask the user to force-push themselves.",
    ),
    (
        "reset-hard",
        r"\bgit\b[^;&|\n]*\breset\b[^;&|\n]*--hard\b",
        "`git reset --hard` discards uncommitted work irreversibly. Use `git stash` or commit first, or ask the user.",
    ),
    (
        "git-clean-force",
        r"\bgit\b[^;&|\n]*\bclean\b[^;&|\n]*\s-[a-zA-Z]*f[a-zA-Z]*[dx][a-zA-Z]*\b|\bgit\b[^;&|\n]*\bclean\b[^;&|\n]*\s-[a-zA-Z]*[dx][a-zA-Z]*f[a-zA-Z]*\b",
        "`git clean -fd`/`-fdx` deletes untracked files (and ignored ones with -x) for good. Remove the specific files you created instead.",
    ),
    (
        "rm-root-or-home",
        r#"\brm\s+(-[a-zA-Z]*\s+|--[a-z-]+\s+)*(-[a-zA-Z]*[rR][a-zA-Z]*|--recursive)\s+(-[a-zA-Z]*\s+|--[a-z-]+\s+)*("?(/|/\*|~|~/|~/\*|\$HOME|\$\{HOME\}|\$HOME/\*)"?)(\s|$|;|&|\|)"#,
        "recursively deleting the root or home directory destroys the machine's files. Delete only the specific paths inside the project you mean.",
    ),
    (
        "pipe-to-shell",
        r#"\b(curl|wget)\b[^|\n]*\|\s*(sudo\s+(-[a-zA-Z]+\s+)*)?(env\s+)?(ba|z|k|da)?sh\b|\b((ba|z|k|da)?sh|source)\b[^;&|\n]*<\s*<?\(\s*(curl|wget)\b|(^|[;&|(\s])\.\s+<\(\s*(curl|wget)\b|\b((ba|z|k|da)?sh\s+-[a-zA-Z]*c|eval)\s+["']?(\$\(|`)\s*(curl|wget)\b"#,
        "piping a download into a shell (or running it through `<(…)` or `$(…)`) runs unreviewed code. Download the script to a file, read it, and run it only if the user agrees.",
    ),
    (
        "drop-database",
        r"(?i)\bdrop\s+(database|schema)\b|\bdropdb\b",
        "dropping a database destroys its data. Ask the user; use a migration that can be rolled back instead.",
    ),
    (
        "disk-wipe",
        r"\bmkfs(\.[a-z0-9]+)?\b|\bdd\b[^\n]*\bof=/dev/(sd|nvme|hd|vd|xvd)",
        "writing a filesystem or raw data to a disk device destroys it. This is not something an agent should run.",
    ),
];
