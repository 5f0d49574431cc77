"""The org from DingTalk's contacts: the department tree and its people (api), what a sync would
change (plan), applying it in one transaction (apply), and the contact events on the Stream
(events). The org file keeps only what DingTalk does not know: which department is which unit,
the roles of the people it lists, and the group bindings."""
