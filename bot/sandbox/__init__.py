"""The local DingTalk emulator and the browser sandbox."""
