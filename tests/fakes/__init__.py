"""Fakes of the platforms' HTTP APIs, served by aiohttp on 127.0.0.1 for the tests."""
