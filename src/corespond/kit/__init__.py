"""What every domain shares and no domain owns: field types and validators, reading a request
body within a limit."""
