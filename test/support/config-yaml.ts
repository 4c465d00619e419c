/**
 * A minimal valid configuration file as an operator writes it: one in-cluster issuer, one rule, a keys directory.
 * Tests of the file loader derive their cases from it by appending or replacing text.
 */
export const MINIMAL_CONFIG_YAML = `server:
  port: 9000
  publicUrl: https://token-broker.example
issuers:
  - name: in-cluster
    issuer: https://kubernetes.default.svc
    audiences: [tyk-token-broker]
signing:
  keysDir: /etc/token-broker/keys
rules:
  - name: payments
    match:
      namespaces: [payments]
    policies: [payments-read]
`;
