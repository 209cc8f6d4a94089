"""``python -m hyperdial_server.security``: make and hash tokens for the tokens file.

* ``new --namespace NS --role ROLE [--label L]`` prints a fresh random token on the first line
  (hand it to the client, it is shown once) and the line for the tokens file on the second.
* ``hash`` reads a token from standard input (never from the command line, where other users
  of the machine could see it) and prints its ``sha256:`` hash.
* ``check FILE`` parses a tokens file and prints how many tokens it holds per namespace.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Sequence

from hyperdial_server.security._tokens import (
    SecurityConfigError,
    check_label,
    check_namespace,
    check_token,
    hash_token,
    new_token,
    parse_role,
    read_tokens_file,
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m hyperdial_server.security``."""
    parser = argparse.ArgumentParser(
        prog="python -m hyperdial_server.security",
        description="Make and hash bearer tokens for the hyperdial tokens file.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    new = commands.add_parser("new", help="make a random token and its tokens-file line")
    new.add_argument("--namespace", required=True, help="the tenant the token belongs to")
    new.add_argument(
        "--role", required=True, choices=["read-only", "read-write", "admin"], help="its role"
    )
    new.add_argument("--label", default="", help="a name for the token in the server's logs")
    commands.add_parser("hash", help="hash a token read from standard input")
    check = commands.add_parser("check", help="check a tokens file")
    check.add_argument("file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "new":
            check_namespace(args.namespace)
            role = parse_role(args.role)
            token = new_token()
            line = f"{hash_token(token)} {args.namespace} {role.value}"
            if args.label:
                line += f" {check_label(args.label)}"
            print(token)
            print(line)
        elif args.command == "hash":
            # One token per line; surrounding whitespace (a trailing newline) is not part of it.
            lines = [s.strip() for s in sys.stdin.read().splitlines() if s.strip()]
            if not lines:
                raise ValueError("no token on standard input")
            for token in lines:
                print(hash_token(check_token(token)))
        else:
            table = read_tokens_file(args.file)
            per_namespace = Counter(p.namespace for p in table.values())
            for namespace, count in sorted(per_namespace.items()):
                print(f"{namespace}: {count} token{'s' if count > 1 else ''}")
    except (SecurityConfigError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
