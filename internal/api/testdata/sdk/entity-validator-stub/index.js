'use strict';
// Stub of @jupiterone/integration-sdk-entity-validator. The synchronization
// client never validates entities against schemas, so a validator that
// accepts everything is enough for the j1ds SDK compatibility test.
class EntityValidator {
  constructor() {}
  validateEntity() {
    return { isValid: true, errors: [] };
  }
  addSchemas() {}
}
module.exports = { EntityValidator };
