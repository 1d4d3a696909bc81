"""Sign-in: staff through OpenID Connect, participants with an enrolment code and passphrase;
server-side sessions and API tokens."""
