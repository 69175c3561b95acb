// A user-assigned managed identity, with no role of its own: main.bicep makes three (the service
// identity, the Graph identity, the sign-in identity) and gives roles to the service identity only.
// User-assigned rather than system-assigned so that each exists before the app does, survives
// re-creating the app, and can be named in role assignments and federated credentials ahead of
// the first deploy.

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
