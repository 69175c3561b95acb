// The one user-assigned managed identity PartnerGuard uses for everything: storage (host and
// app), Application Insights, Azure Communication Services, and as the federated credential of
// the multi-tenant Graph app (scripts/setup_identity.py adds it there). User-assigned rather
// than system-assigned so that it exists before the app does, survives re-creating the app,
// and can be named in role assignments and the federated credential ahead of the first deploy.

@description('Name of the user-assigned managed identity.')
param name string

@description('Azure region.')
param location string

param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
