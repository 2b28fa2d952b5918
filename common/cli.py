"""What every command line of the project shares: help texts that show the defaults."""

from __future__ import annotations

import argparse


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``argparse``'s formatter that appends ``(default: ...)`` to an option's help, where there is a default to show.

    Options without one (required options, ``None``, switches that are off) and help texts that
    already say their default are left as written.
    """

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        # identity, not equality: a default of 0 is shown, a switch that is off (False) is not
        if action.required or any(action.default is v for v in (None, False, argparse.SUPPRESS)) or "default" in text:
            return action.help
        return super()._get_help_string(action)
