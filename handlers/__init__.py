"""What chat commands do: grammar, intake parsing, handlers and the replies they render."""
