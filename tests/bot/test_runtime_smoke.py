import aiohttp


async def test_the_bot_starts_serves_health_and_the_chat_page_then_stops(start_bot):
    runtime = await start_bot()
    base = f"http://127.0.0.1:{runtime.config.http_port}"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/healthz") as response:
            assert response.status == 200
        async with http.get(f"{base}/") as response:
            assert response.status == 200
            assert "iesaiste_chat" in response.cookies
    await runtime.stop()
