"""Command-line entry points (icefall style: argparse, one module per command)."""
