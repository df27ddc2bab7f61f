"""Tests for Retrovue."""
