"""From what a user gave to a `RotationRequest`: one home for every input rule.

- `fields`: every input once (name, default, secret or not, size limit);
- `rules`: one function per rule, one problem code per rule (imports only `errors`, so
  `cf` and `issuers` use its URL rule too);
- `problems`: how an adapter names its inputs (`Dialect`) and the problem collector;
- `certificate`: where the new certificate comes from (given, PKCS#12, or Vault);
- `build`: values -> checked `Settings` (the request and what only an adapter acts on).

The Action (`action.inputs`) and the command line (`cli.rotate_cmd`) both call
`build.build`; neither checks a value itself. Nothing is imported here, so that a lower
layer can import `request.rules` without pulling in the builder.
"""
