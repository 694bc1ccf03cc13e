"""The advertiser SDK: search, request, receive and present licences (sync and asyncio)."""
