"""The baseline of bench/e2e.py: the official SDK's own client and handler types, replying to
every message through its session webhook with aiohttp, and doing nothing else."""

from __future__ import annotations

import asyncio
import os

import aiohttp
import dingtalk_stream  # reads DINGTALK_OPENAPI_ENDPOINT at import
from dingtalk_stream import AckMessage, ChatbotMessage


class Echo(dingtalk_stream.ChatbotHandler):
    def __init__(self) -> None:
        super().__init__()
        self.http: aiohttp.ClientSession | None = None

    async def process(self, callback: dingtalk_stream.CallbackMessage) -> tuple[int, str]:
        msg = ChatbotMessage.from_dict(callback.data)
        if self.http is None:
            self.http = aiohttp.ClientSession()
        body = {"msgtype": "text", "text": {"content": "echo " + (msg.text.content if msg.text else "")}}
        async with self.http.post(msg.session_webhook, json=body) as resp:
            await resp.read()
        return AckMessage.STATUS_OK, "OK"


class Client(dingtalk_stream.DingTalkStreamClient):
    def get_host_ip(self) -> str:
        return "127.0.0.1"  # the SDK would reach toward 8.8.8.8


def main() -> None:
    credential = dingtalk_stream.Credential(os.environ["DINGTALK_CLIENT_ID"], os.environ["DINGTALK_CLIENT_SECRET"])
    client = Client(credential)
    client.register_callback_handler(dingtalk_stream.ChatbotMessage.TOPIC, Echo())
    asyncio.run(client.start())


if __name__ == "__main__":
    main()
