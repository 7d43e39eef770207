"""Channels consumers: a sync WebsocketConsumer (run in asgiref's thread)
and an AsyncWebsocketConsumer chat room on the in-memory channel layer."""

from channels.generic.websocket import AsyncWebsocketConsumer, WebsocketConsumer


class EchoConsumer(WebsocketConsumer):
    def connect(self):
        # Takes "chat.v2" when the client offers it.
        self.accept("chat.v2" if "chat.v2" in self.scope["subprotocols"] else None)

    def receive(self, text_data=None, bytes_data=None):
        if text_data == "close":
            self.close(code=4005)
        elif text_data is not None:
            self.send(text_data="sync echo: " + text_data)
        else:
            self.send(bytes_data=b"sync echo: " + bytes_data)


class DenyConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        await self.close()  # before accepting: the handshake is refused (403)


class ChatConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        self.group = "room_" + self.scope["url_route"]["kwargs"]["room"]
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        await self.channel_layer.group_send(self.group, {"type": "chat.message", "text": text_data})

    async def chat_message(self, event):
        await self.send(text_data=event["text"])
