"""The package version: one leaf module, so that any layer can read it without importing the
package root (pyproject.toml reads it too)."""

__version__ = "0.1.0"
