"""DingTalk in and out: stream and HTTP callback receivers, the outbox sender."""
