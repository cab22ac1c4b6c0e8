"""Talking to the Run:ai control plane: token auth, the httpx client, endpoints as data, paging.

Knows HTTP and the API's contract, nothing about the lake: it may import core only, and is used
by audit/ and usage/.
"""
