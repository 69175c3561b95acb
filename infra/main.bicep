// PartnerGuard in the partner's own subscription: one resource group with a Flex Consumption
// function app, its user-assigned managed identities, storage, Application Insights and Azure
// Communication Services Email. No secret is created or stored anywhere:
// - the service identity (PARTNERGUARD_IDENTITY_CLIENT_ID) signs in to storage, queues, tables,
//   ACS and Application Insights, with one data role on each resource;
// - the Graph identity (PARTNERGUARD_GRAPH_IDENTITY_CLIENT_ID) holds no Azure role at all: it is
//   only the federated credential of the multi-tenant Graph app, so a token of the service identity
//   opens PartnerGuard's data but no customer tenant (docs/deploy.md, "Who can read every customer
//   tenant");
// - the sign-in identity is only App Service Authentication's credential for the sign-in app
//   (OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID), so sign-in needs neither a secret nor the implicit flow.
// scripts/setup_identity.py adds the Graph and sign-in identities as federated credentials of
// their apps, one credential per azd environment (docs/deploy.md, "Identity: the script").
//
// Deploy with `azd up` (azure.yaml), or with one command:
//   az deployment sub create --location <region> --template-file infra/main.bicep \
//     --parameters environmentName=<name> location=<region> graphAppClientId=<app id> signInClientId=<app id>
// See docs/deploy.md.

targetScope = 'subscription'

@minLength(1)
@maxLength(40)
@description('Name of the environment (azd): names the resource group and seeds the resource names.')
param environmentName string

@minLength(1)
@description('Azure region of the resources; it must offer the Flex Consumption plan (az functionapp list-flexconsumption-locations).')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Resource group to create or reuse. Default: rg-<environmentName>.')
param resourceGroupName string = ''

@description('The partner tenant (AZURE_TENANT_ID): the home of the Graph app. Default: the tenant this deployment runs in.')
param partnerTenantId string = tenant().tenantId

// The two app ids have an empty default on purpose. `azd up` resolves every parameter before its
// preprovision hook runs (azd cmd/up.go -> BicepProvider.EnsureEnv -> ensureParameters), and a
// required parameter without a value is a prompt, or a missing input under --no-prompt
// (Azure/azure-dev#5806). With a default, that first pass skips them; the hook
// (scripts/setup_identity.py --azd) creates the apps and saves their ids with `azd env set`; azd
// reads main.parameters.json again before it deploys (azd >= 1.10.2, #4363, azure.yaml's
// requiredVersions). A default rather than a nullable `string?`: azd skips both alike, but only from
// 1.12.0 for nullable ones (#4722), and checkov's Bicep parser cannot read `?` types.
// modules/function-app.bicep requires 36 characters, so a deployment without the ids fails there,
// naming the parameter, instead of deploying an app that cannot sign in.
@description('Client id of the multi-tenant app PartnerGuard signs in to Graph as (AZURE_CLIENT_ID); scripts/setup_identity.py creates it. Required: empty only until the azd hook has created the app.')
param graphAppClientId string = ''

@description('Client id of the single-tenant app that App Service Authentication signs users in with; scripts/setup_identity.py creates it. Required: empty only until the azd hook has created the app.')
param signInClientId string = ''

@description('PARTNERGUARD_TENANTS: comma-separated tenant ids to monitor. Default: the partner tenant alone.')
param monitoredTenants string = ''

@description('PARTNERGUARD_DISCOVER_CUSTOMERS: also monitor the customers with an active GDAP relationship.')
param discoverCustomers bool = false

@description('SCAN_SCHEDULE: NCRONTAB (six fields, UTC) of the scan timer.')
param scanSchedule string = '0 0 */6 * * *'

@description('AZURE_CLOUD: the national cloud the monitored tenants live in.')
@allowed([
  'public'
  'usgov'
  'usgovdod'
  'china'
])
param azureCloud string = 'public'

@description('ALERT_RECIPIENTS: comma-separated addresses of the partner admins who get alerts.')
param alertRecipients string = ''

@description('ALERT_RECIPIENTS_BY_TENANT: JSON object of tenant id to a list of extra addresses.')
param alertRecipientsByTenant string = ''

@description('ALERT_REMINDER_HOURS: re-send open critical findings at this interval; 0 is off.')
@minValue(0)
@maxValue(2160)
param alertReminderHours int = 0

// Which alert secrets the partner has stored in the Key Vault (PARTNERGUARD_KEY_VAULT_NAME), by
// setting NAME: each named one becomes a Key Vault reference in the app settings, the others stay
// empty (modules/function-app.bicep; docs/deploy.md, "Alert channels: Teams and webhooks"). Names
// only, never a value: parameters end up in the deployment history. A comma-separated string,
// not an array: azd turns an env value into an array parameter only since Azure/azure-dev#6694
// (2026), after this project's minimum azd, and then refuses a set-but-empty value as invalid JSON.
// A misspelled name fails the deployment: the module's array parameter allows only the four names.
@description('ALERT_SECRET_SETTINGS: comma-separated names of the alert settings stored in the Key Vault (ALERT_TEAMS_WEBHOOK_URL, ALERT_WEBHOOK_URL, ALERT_WEBHOOK_SECRET, ALERT_ROUTES_BY_TENANT). Names only, never values.')
param alertSecretSettings string = ''

@description('The partner\'s own sender domain for alert emails (e.g. alerts.contoso.com). Empty: the Azure-managed domain, for trials only (10 mails an hour).')
param emailCustomDomain string = ''

@description('Set to true once the custom sender domain is verified in ACS; until then alerts stay off.')
param emailCustomDomainVerified bool = false

@description('Local part of the sender address on the custom domain.')
param emailSenderUsername string = 'partnerguard'

@description('Where ACS keeps email data at rest (a geography such as United States, Europe, UK, Australia).')
param emailDataLocation string = 'United States'

@description('SIGNIN_LOOKBACK_HOURS: the sign-in evidence window.')
@minValue(1)
@maxValue(720)
param signinLookbackHours int = 168

@description('CREDENTIAL_EXPIRY_DAYS: warn this many days before a secret or certificate expires.')
@minValue(0)
@maxValue(3650)
param credentialExpiryDays int = 30

@description('SECRET_MAX_LIFETIME_DAYS: a client secret living longer than this is high severity.')
@minValue(1)
@maxValue(36500)
param secretMaxLifetimeDays int = 180

@description('GDAP_EXPIRY_DAYS: warn this many days before a GDAP relationship without auto-extend ends.')
@minValue(0)
@maxValue(730)
param gdapExpiryDays int = 30

@description('INCLUDE_GUESTS: assess guest users in mfa.registration.')
param includeGuests bool = false

@description('RUN_RETENTION_DAYS: how long runs and resolved findings are kept.')
@minValue(1)
@maxValue(3650)
param runRetentionDays int = 365

@description('EMERGENCY_ACCESS_ACCOUNTS: comma-separated object ids or UPNs of the break-glass accounts.')
param emergencyAccessAccounts string = ''

@description('PARTNERGUARD_CONFIG: the settings file shipped in the app package, as a path from the repository root (e.g. partnerguard.yaml; docs/deploy.md, "Settings as code: the file in Azure"). Empty: no file.')
param settingsFile string = ''

@description('Memory of each Functions instance: 2048 MB fits ordinary tenants, 4096 MB several tenants of 100,000 users.')
@allowed([
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Replication of the storage account (geo-redundant by default: the exception audit trail is compliance evidence).')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
param storageSku string = 'Standard_GRS'

@description('Days Log Analytics keeps logs and telemetry.')
@minValue(30)
@maxValue(730)
param logRetentionDays int = 30

var tags = {
  'azd-env-name': environmentName
  application: 'partnerguard'
}
// One short, stable suffix per subscription, environment and region keeps global names unique.
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var functionAppName = 'func-pg-${resourceToken}'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: !empty(resourceGroupName) ? resourceGroupName : 'rg-${environmentName}'
  location: location
  tags: tags
}

// The service identity: storage, queues, tables, ACS and Application Insights.
module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: 'id-pg-${resourceToken}'
    location: location
    tags: tags
  }
}

// The Graph identity: no Azure role; only the Graph app's federated credential.
module graphIdentity 'modules/identity.bicep' = {
  name: 'graph-identity'
  scope: rg
  params: {
    name: 'id-pg-graph-${resourceToken}'
    location: location
    tags: tags
  }
}

// The sign-in identity: no Azure role; only App Service Authentication's credential for the sign-in app.
module signInIdentity 'modules/identity.bicep' = {
  name: 'signin-identity'
  scope: rg
  params: {
    name: 'id-pg-signin-${resourceToken}'
    location: location
    tags: tags
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: 'stpg${resourceToken}'
    location: location
    tags: tags
    skuName: storageSku
    deploymentContainerName: 'deployment-package'
    identityPrincipalId: identity.outputs.principalId
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    workspaceName: 'log-pg-${resourceToken}'
    appInsightsName: 'appi-pg-${resourceToken}'
    location: location
    tags: tags
    retentionInDays: logRetentionDays
    identityPrincipalId: identity.outputs.principalId
  }
}

module communication 'modules/communication.bicep' = {
  name: 'communication'
  scope: rg
  params: {
    communicationServiceName: 'acs-pg-${resourceToken}'
    emailServiceName: 'ecs-pg-${resourceToken}'
    dataLocation: emailDataLocation
    customDomainName: emailCustomDomain
    customDomainVerified: emailCustomDomainVerified
    customSenderUsername: emailSenderUsername
    identityPrincipalId: identity.outputs.principalId
    tags: tags
  }
}

// The alert channels' secrets, which the partner stores and the app reads through Key Vault
// references (the service identity holds Key Vault Secrets User on this vault only).
module keyVault 'modules/key-vault.bicep' = {
  name: 'key-vault'
  scope: rg
  params: {
    name: 'kv-pg-${resourceToken}'
    location: location
    tags: tags
    identityPrincipalId: identity.outputs.principalId
  }
}

module functionApp 'modules/function-app.bicep' = {
  name: 'function-app'
  scope: rg
  params: {
    name: functionAppName
    planName: 'plan-pg-${resourceToken}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    graphIdentityId: graphIdentity.outputs.id
    graphIdentityClientId: graphIdentity.outputs.clientId
    signInIdentityId: signInIdentity.outputs.id
    signInIdentityClientId: signInIdentity.outputs.clientId
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    blobEndpoint: storage.outputs.blobEndpoint
    queueEndpoint: storage.outputs.queueEndpoint
    tableEndpoint: storage.outputs.tableEndpoint
    instanceMemoryMB: instanceMemoryMB
    appInsightsConnectionString: monitoring.outputs.connectionString
    signInClientId: signInClientId
    partnerTenantId: partnerTenantId
    loginEndpoint: environment().authentication.loginEndpoint
    // The partner tenant by default, unless a settings file names the tenants.
    monitoredTenants: !empty(monitoredTenants) ? monitoredTenants : (empty(settingsFile) ? partnerTenantId : '')
    discoverCustomers: discoverCustomers
    scanSchedule: scanSchedule
    azureCloud: azureCloud
    graphAppClientId: graphAppClientId
    emailReady: communication.outputs.emailReady
    acsEndpoint: communication.outputs.endpoint
    emailSender: communication.outputs.senderAddress
    alertRecipients: alertRecipients
    alertRecipientsByTenant: alertRecipientsByTenant
    alertReminderHours: alertReminderHours
    keyVaultName: keyVault.outputs.name
    // `A, b` -> ['A', 'B']: ARM's contains() compares case-sensitively, so the names are upper-cased.
    alertSecretSettings: empty(alertSecretSettings) ? [] : split(toUpper(replace(alertSecretSettings, ' ', '')), ',')
    signinLookbackHours: signinLookbackHours
    credentialExpiryDays: credentialExpiryDays
    secretMaxLifetimeDays: secretMaxLifetimeDays
    gdapExpiryDays: gdapExpiryDays
    includeGuests: includeGuests
    runRetentionDays: runRetentionDays
    emergencyAccessAccounts: emergencyAccessAccounts
    settingsFile: settingsFile
  }
}

// azd stores these in the environment; scripts/setup_identity.py reads the identities and the host
// name to add the federated credentials and the sign-in redirect URI.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = partnerTenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output PARTNERGUARD_APP_HOSTNAME string = functionApp.outputs.defaultHostName
output PARTNERGUARD_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output PARTNERGUARD_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output PARTNERGUARD_GRAPH_IDENTITY_CLIENT_ID string = graphIdentity.outputs.clientId
output PARTNERGUARD_GRAPH_IDENTITY_PRINCIPAL_ID string = graphIdentity.outputs.principalId
output PARTNERGUARD_SIGNIN_IDENTITY_PRINCIPAL_ID string = signInIdentity.outputs.principalId
// The suffix of this deployment's resource names: unique per subscription, environment and region,
// stable across re-deployments. scripts/setup_identity.py names this deployment's federated
// credentials after it, so two deployments never share one.
output PARTNERGUARD_RESOURCE_TOKEN string = resourceToken
output PARTNERGUARD_EMAIL_READY bool = communication.outputs.emailReady
output PARTNERGUARD_EMAIL_SENDER string = communication.outputs.senderAddress
output PARTNERGUARD_EMAIL_DOMAIN_RECORDS object = communication.outputs.customDomainVerificationRecords
// Where the partner stores the alert channels' secrets (`az keyvault secret set --vault-name ...`;
// docs/deploy.md, "Alert channels: Teams and webhooks"). A name, not a secret.
output PARTNERGUARD_KEY_VAULT_NAME string = keyVault.outputs.name
