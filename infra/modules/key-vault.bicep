// The Key Vault that holds the alert channels' secrets: the Teams Workflows URL (it carries its
// own `sig=` signature), the JSON webhook's URL and signing secret, and the per-tenant routes
// (ALERT_TEAMS_WEBHOOK_URL, ALERT_WEBHOOK_URL, ALERT_WEBHOOK_SECRET, ALERT_ROUTES_BY_TENANT).
//
// Why a vault at all: the app settings resource (Microsoft.Web/sites/config `appsettings` in
// function-app.bicep) replaces every app setting on each `azd provision`, so a secret set by hand
// on the app is wiped by the next provision, and a secret passed as a template parameter is kept
// in the deployment history. The partner stores each secret here with `az keyvault secret set`,
// and the template sets the app setting to a Key Vault reference, which App Service resolves with
// the app's service identity (keyVaultReferenceIdentity):
// https://learn.microsoft.com/azure/app-service/app-service-key-vault-references
// The template never writes or reads a secret (no `secrets` child, no listKeys, no output of one).
//
// Access is Azure RBAC only (no access policies): the service identity gets Key Vault Secrets User
// on this vault and nothing else. The deployer is granted nothing here: a standing write role for
// whoever last ran `azd provision` (a person or a CI identity) would outlive its need; the partner
// grants Key Vault Secrets Officer to the admin who stores the secrets, on this vault only, with
// the `az role assignment create` step of docs/deploy.md ("Alert channels: Teams and webhooks").

@description('Key Vault name: 3-24 letters, digits and hyphens, starting with a letter; globally unique.')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region.')
param location string

param tags object = {}

@description('Principal (object) id of the managed identity that reads the secrets (App Service resolves the references with it).')
param identityPrincipalId string

// Key Vault Secrets User: "Read secret contents. Only works for key vaults that use the 'Azure
// role-based access control' permission model." Built-in role definition id from
// https://learn.microsoft.com/azure/role-based-access-control/built-in-roles#key-vault-secrets-user
var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  // checkov:skip=CKV_AZURE_109: Without a virtual network App Service resolves Key Vault references over the public endpoint, and App Service is not a trusted service for references (only for certificate import), so a deny-by-default firewall would leave every reference unresolved; every request needs an Entra token and an RBAC data role.
  // checkov:skip=CKV_AZURE_189: Same reason: the public endpoint stays open for App Service and for the admin who stores the secrets; access is by Entra identity and data-plane RBAC only (no access policies, no keys).
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    // Azure RBAC decides every data-plane request; access policies are ignored.
    enableRbacAuthorization: true
    // A deleted vault or secret can be recovered for 90 days, and nobody can purge it before:
    // the webhook secret signs what PSA tools trust, so losing it silently is worse than waiting.
    // A vault deleted with its environment keeps its name reserved meanwhile; docs/deploy.md says
    // how to recover it (`az keyvault recover`) before provisioning the same environment again.
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    // Nothing but App Service's references and the admin's CLI reads this vault: no VM,
    // template or disk-encryption access.
    enabledForDeployment: false
    enabledForTemplateDeployment: false
    enabledForDiskEncryption: false
    // TLS: Key Vault accepts TLS 1.2 and 1.3 only, service-wide; a vault has no setting for it
    // (https://learn.microsoft.com/azure/key-vault/general/security-features#tls-and-https).
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'None'
      defaultAction: 'Allow'
    }
  }
}

resource identityReadsSecrets 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, identityPrincipalId, keyVaultSecretsUser)
  scope: vault
  properties: {
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
  }
}

output name string = vault.name
