// The Functions app on the Flex Consumption plan (Linux, Python 3.11), its app settings, App
// Service Authentication in front of it, and basic (publishing) credentials switched off.
//
// Three user-assigned identities are attached to the app and to nothing else: the service identity
// (storage, queues, tables, ACS, Application Insights), the Graph identity (only the Graph app's
// federated credential) and the sign-in identity (only App Service Authentication's credential).
//
// The four children of the site (app settings, authentication, the FTP and SCM publishing
// policies) are deployed one after the other: ARM deploys siblings in parallel, and concurrent
// updates of one site's configuration race (azd's own templates serialise them for that reason:
// Azure/azure-dev#3125, "Serialize updates for config-appsettings and config-logs"). App settings
// come first because authentication names one of them (OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID).
//
// The app settings are every setting of SPEC §5 that applies in Azure, in their identity-based
// form: nothing here is a secret (the alert channels' secrets are Key Vault references to
// modules/key-vault.bicep, not values). tests/test_infra_settings.py derives the settings the code
// reads (partnerguard/settings.py, the bindings of function_app.py) and fails when one is missing
// here. Flex Consumption takes the runtime from `functionAppConfig` and rejects
// FUNCTIONS_WORKER_RUNTIME, FUNCTIONS_EXTENSION_VERSION and the content-share settings, so
// none of them appear.

@description('Name of the function app (also its default host name).')
param name string

@description('Name of the Flex Consumption plan.')
param planName string

@description('Azure region (one that offers Flex Consumption).')
param location string

param tags object = {}

@description('Resource id of the service identity (storage, queues, tables, ACS, Application Insights).')
param identityId string

@description('Client id of the service identity.')
param identityClientId string

@description('Resource id of the Graph identity: only the federated credential of the Graph app.')
param graphIdentityId string

@description('Client id of the Graph identity (PARTNERGUARD_GRAPH_IDENTITY_CLIENT_ID).')
param graphIdentityClientId string

@description('Resource id of the sign-in identity: only App Service Authentication\'s credential for the sign-in app.')
param signInIdentityId string

@description('Client id of the sign-in identity (OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID).')
param signInIdentityClientId string

@description('URL of the blob container that holds the deployment package.')
param deploymentContainerUrl string

@description('Storage service endpoints (https://<account>.<service>.core.windows.net/).')
param blobEndpoint string
param queueEndpoint string
param tableEndpoint string

@description('Application Insights connection string (not a secret: the component accepts Entra-authenticated telemetry only).')
param appInsightsConnectionString string

// Graph's cross-tenant limits count for the whole app, and each scanning process paces itself to
// 1/SCAN_PROCESSES of them (partnerguard/graph/pacing.py). On Flex Consumption the maximum applies
// to each per-function scale group, so 1 keeps the scan worker on one instance: the two numbers
// rise together or not at all (docs/scaling.md). tests/test_infra_template.py holds them equal.
@description('Most instances each function group scales out to; equal to SCAN_PROCESSES of partnerguard/graph/pacing.py.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 1

@description('Memory of each instance; 4096 for several tenants of 100,000 users (docs/scaling.md).')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

// The app ids are required here, with their length: main.bicep lets them be empty until azd's
// preprovision hook has created the apps, and a deployment that still lacks them fails on this
// module, naming the parameter, rather than deploying an app that cannot sign in.
@description('Client id of the single-tenant app registration App Service Authentication signs users in with (scripts/setup_identity.py creates it).')
@minLength(36)
@maxLength(36)
param signInClientId string

@description('The partner tenant (AZURE_TENANT_ID): home of both app registrations and of the users who sign in.')
param partnerTenantId string

@description('Sign-in host of the cloud, e.g. https://login.microsoftonline.com/.')
param loginEndpoint string

// PartnerGuard's own settings (SPEC §5).
param monitoredTenants string
param discoverCustomers bool
param scanSchedule string
param azureCloud string
@description('Client id of the multi-tenant Graph app (AZURE_CLIENT_ID).')
@minLength(36)
@maxLength(36)
param graphAppClientId string
param emailReady bool
param acsEndpoint string
param emailSender string
param alertRecipients string
param alertRecipientsByTenant string
param alertReminderHours int
@description('Name of the Key Vault that holds the alert channels\' secrets (modules/key-vault.bicep).')
param keyVaultName string
// A subset of these four names: ARM refuses any other element of an array parameter with allowed
// values (https://learn.microsoft.com/azure/azure-resource-manager/bicep/parameters#allowed-values),
// so a misspelled name fails the deployment instead of leaving a channel silently unset.
@description('The alert settings whose secrets the partner stored in the Key Vault (ALERT_SECRET_SETTINGS); each becomes a Key Vault reference.')
@allowed([
  'ALERT_TEAMS_WEBHOOK_URL'
  'ALERT_WEBHOOK_URL'
  'ALERT_WEBHOOK_SECRET'
  'ALERT_ROUTES_BY_TENANT'
])
param alertSecretSettings array = []
param signinLookbackHours int
param credentialExpiryDays int
param secretMaxLifetimeDays int
param gdapExpiryDays int
param includeGuests bool
param runRetentionDays int
param emergencyAccessAccounts string
@description('Path of the settings file inside the app package (the repository root azd deploys); empty for none.')
param settingsFile string

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: Zone redundancy is not offered in every region that has Flex Consumption; a zone outage delays queued scans, which are retried, and loses no data (geo-redundant storage).
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  // azd deploys the `api` service of azure.yaml to the app with this tag.
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  // checkov:skip=CKV_AZURE_222: Admins and automation must reach the dashboard and API; every route but /api/health needs an Entra sign-in (App Service Authentication) and a function key. A private endpoint needs a virtual network, left out here (docs/deploy.md).
  // checkov:skip=CKV_AZURE_17: Callers are browsers and automation authenticated with Entra tokens and function keys; requiring client certificates would lock the dashboard out.
  // checkov:skip=CKV_AZURE_212: Flex Consumption scales to zero by design; a scan cut short by a lost instance is retried from its queue, and the next schedule runs anyway.
  // checkov:skip=CKV_AZURE_213: App Service health check replaces failing members of a fixed instance set; Flex Consumption creates instances on demand. /api/health answers external probes.
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
      '${graphIdentityId}': {}
      '${signInIdentityId}': {}
    }
  }
  // checkov:skip=CKV_AZURE_78: Flex Consumption deprecates siteConfig.ftpsState (FTPS is not supported on the plan); FTP publishing is refused by the ftp basicPublishingCredentialsPolicies child with allow false.
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // Key Vault references resolve with the system-assigned identity unless this names a
    // user-assigned one; this app has none system-assigned, so the service identity (Key Vault
    // Secrets User on the vault) resolves them
    // (https://learn.microsoft.com/azure/app-service/app-service-key-vault-references#access-vaults-with-a-user-assigned-identity).
    keyVaultReferenceIdentity: identityId
    // No ftpsState: Flex Consumption deprecates it (FTPS is not supported there at all;
    // https://learn.microsoft.com/azure/azure-functions/functions-app-settings#flex-consumption-plan-deprecations).
    // FTP publishing is refused by the `ftp` basic-credentials policy below.
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      http20Enabled: true
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  // checkov:skip=CKV_AZURE_13: Misapplied web-app check: this resource is a sites/config child; authentication is the authsettingsV2 resource of this module.
  // checkov:skip=CKV_AZURE_63: Misapplied web-app check: a sites/config child has no logging properties; the app logs to Application Insights.
  // checkov:skip=CKV_AZURE_65: Misapplied web-app check: a sites/config child has no logging properties; the app logs to Application Insights.
  parent: functionApp
  // checkov:skip=CKV_AZURE_66: Misapplied web-app check: a sites/config child has no tracing properties; requests are traced in Application Insights.
  // checkov:skip=CKV_AZURE_80: Misapplied web-app check: there is no .NET Framework here (a Python app on Linux).
  // checkov:skip=CKV_AZURE_88: Misapplied web-app check: Flex Consumption has no content share, and Azure Files would need shared keys.
  name: 'appsettings'
  // checkov:skip=CKV_AZURE_222: Misapplied web-app check: public network access is a property of the site (see its skip).
  properties: {
    // The Functions host's own storage, reached with the managed identity (no account key).
    AzureWebJobsStorage__credential: 'managedidentity'
    AzureWebJobsStorage__clientId: identityClientId
    AzureWebJobsStorage__blobServiceUri: blobEndpoint
    AzureWebJobsStorage__queueServiceUri: queueEndpoint
    AzureWebJobsStorage__tableServiceUri: tableEndpoint
    // Telemetry with an Entra token of the managed identity (the component refuses keys).
    APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
    // What to scan and when.
    PARTNERGUARD_TENANTS: monitoredTenants
    // With a settings file (below), settings the template would only fill with its defaults stay
    // empty, so the file's values apply: a non-empty app setting overrides the file.
    PARTNERGUARD_DISCOVER_CUSTOMERS: empty(settingsFile) ? (discoverCustomers ? 'true' : 'false') : ''
    SCAN_SCHEDULE: scanSchedule
    // How PartnerGuard signs in to Graph: as the multi-tenant app, with the managed identity as
    // its federated credential. No AZURE_CLIENT_SECRET or certificate exists in Azure.
    AZURE_CLOUD: azureCloud
    AZURE_TENANT_ID: partnerTenantId
    AZURE_CLIENT_ID: graphAppClientId
    PARTNERGUARD_GRAPH_IDENTITY_CLIENT_ID: graphIdentityClientId
    // The service identity: storage, queues, tables, ACS and Application Insights.
    PARTNERGUARD_IDENTITY_CLIENT_ID: identityClientId
    // App Service Authentication's client assertion: a token of the sign-in identity, which is a
    // federated credential of the sign-in app (preview feature of App Service Authentication:
    // https://learn.microsoft.com/azure/app-service/configure-authentication-provider-aad#use-a-managed-identity-instead-of-a-secret-preview).
    OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID: signInIdentityClientId
    // PartnerGuard's tables and queues, and the queue triggers' connection (PARTNERGUARD_STORAGE).
    PARTNERGUARD_STORAGE__credential: 'managedidentity'
    PARTNERGUARD_STORAGE__clientId: identityClientId
    PARTNERGUARD_STORAGE__tableServiceUri: tableEndpoint
    PARTNERGUARD_STORAGE__queueServiceUri: queueEndpoint
    // Alerts by email through ACS with the managed identity. Recipients stay empty until a
    // sender domain is linked: recipients without a transport stop the app at start.
    ALERT_RECIPIENTS: emailReady ? alertRecipients : ''
    ALERT_RECIPIENTS_BY_TENANT: emailReady ? alertRecipientsByTenant : ''
    ALERT_REMINDER_HOURS: empty(settingsFile) ? string(alertReminderHours) : ''
    // After a send ACS may have taken (timeout, 5xx), no resend before this and a lookup's 404.
    ALERT_SETTLE_SECONDS: empty(settingsFile) ? '300' : ''
    ACS_ENDPOINT: acsEndpoint
    EMAIL_SENDER: emailSender
    // Teams and webhook secrets: a Key Vault reference (secret = setting name, lower-case, dashes)
    // for each one stored in the vault, '' for the others; never a value, as provision replaces
    // these settings. Unresolved, a reference stays its literal text, which Settings refuses
    // (https://learn.microsoft.com/azure/app-service/app-service-key-vault-references).
    ALERT_TEAMS_WEBHOOK_URL: contains(alertSecretSettings, 'ALERT_TEAMS_WEBHOOK_URL') ? '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=alert-teams-webhook-url)' : ''
    ALERT_WEBHOOK_URL: contains(alertSecretSettings, 'ALERT_WEBHOOK_URL') ? '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=alert-webhook-url)' : ''
    ALERT_WEBHOOK_SECRET: contains(alertSecretSettings, 'ALERT_WEBHOOK_SECRET') ? '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=alert-webhook-secret)' : ''
    ALERT_ROUTES_BY_TENANT: contains(alertSecretSettings, 'ALERT_ROUTES_BY_TENANT') ? '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=alert-routes-by-tenant)' : ''
    PARTNERGUARD_PUBLIC_URL: 'https://${functionApp.properties.defaultHostName}'
    // Check thresholds.
    SIGNIN_LOOKBACK_HOURS: empty(settingsFile) ? string(signinLookbackHours) : ''
    CREDENTIAL_EXPIRY_DAYS: empty(settingsFile) ? string(credentialExpiryDays) : ''
    SECRET_MAX_LIFETIME_DAYS: empty(settingsFile) ? string(secretMaxLifetimeDays) : ''
    GDAP_EXPIRY_DAYS: empty(settingsFile) ? string(gdapExpiryDays) : ''
    INCLUDE_GUESTS: empty(settingsFile) ? (includeGuests ? 'true' : 'false') : ''
    RUN_RETENTION_DAYS: empty(settingsFile) ? string(runRetentionDays) : ''
    EMERGENCY_ACCESS_ACCOUNTS: emergencyAccessAccounts
    // Settings as code (docs/deploy.md, "Settings as code: the file in Azure"): the file azd
    // deploys inside the package, which a Linux app runs from at /home/site/wwwroot (Flex
    // Consumption always runs from its package:
    // https://learn.microsoft.com/azure/azure-functions/run-functions-from-deployment-package).
    PARTNERGUARD_CONFIG: empty(settingsFile) ? '' : '/home/site/wwwroot/${settingsFile}'
  }
}

// App Service Authentication (Entra ID) in front of every route but the liveness probe: the
// dashboard and the read routes need a signed-in user of the partner tenant (or a token of an
// identity assigned to the sign-in app), on top of the function key the app itself checks.
// Easy Auth matches excluded paths literally or by a trailing wildcard only, so the scan route
// (/api/tenants/{tenantId}/scans) cannot be exempted without exempting the read routes under
// /api/tenants/ too: automation sends a bearer token as well as its function key.
//
// No client secret, and no implicit flow. Without any client credential App Service
// Authentication signs users in with the OAuth 2.0 implicit grant, which Microsoft does not
// recommend; with `clientSecretSettingName: 'OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID'` its client
// assertion is a token of the sign-in identity (the app setting holds that identity's client id),
// a federated credential of the sign-in app, so it redeems authorization codes like any
// confidential client. This is a preview feature of App Service Authentication, and the only
// documented way to have neither a secret nor the implicit flow:
// https://learn.microsoft.com/azure/app-service/configure-authentication-provider-aad#use-a-managed-identity-instead-of-a-secret-preview
// (the sign-in app's implicit ID-token issuance is switched off by scripts/setup_identity.py).
resource authentication 'Microsoft.Web/sites/config@2024-04-01' = {
  // checkov:skip=CKV_AZURE_13: Misapplied web-app check: this resource is a sites/config child; authentication is the authsettingsV2 resource of this module.
  // checkov:skip=CKV_AZURE_63: Misapplied web-app check: a sites/config child has no logging properties; the app logs to Application Insights.
  // checkov:skip=CKV_AZURE_65: Misapplied web-app check: a sites/config child has no logging properties; the app logs to Application Insights.
  parent: functionApp
  // checkov:skip=CKV_AZURE_66: Misapplied web-app check: a sites/config child has no tracing properties; requests are traced in Application Insights.
  // checkov:skip=CKV_AZURE_80: Misapplied web-app check: there is no .NET Framework here (a Python app on Linux).
  // checkov:skip=CKV_AZURE_88: Misapplied web-app check: Flex Consumption has no content share, and Azure Files would need shared keys.
  name: 'authsettingsV2'
  // checkov:skip=CKV_AZURE_222: Misapplied web-app check: public network access is a property of the site (see its skip).
  properties: {
    platform: {
      enabled: true
    }
    globalValidation: {
      requireAuthentication: true
      unauthenticatedClientAction: 'RedirectToLoginPage'
      redirectToProvider: 'azureactivedirectory'
      excludedPaths: [
        '/api/health'
      ]
    }
    httpSettings: {
      requireHttps: true
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: signInClientId
          clientSecretSettingName: 'OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID'
          openIdIssuer: '${loginEndpoint}${partnerTenantId}/v2.0'
        }
        validation: {
          allowedAudiences: [
            signInClientId
            'api://${signInClientId}'
          ]
        }
      }
    }
    login: {
      // Flex Consumption has no file system for the token store, and the blob store would need a
      // SAS URL (a secret). The session cookie is enough for the dashboard.
      tokenStore: {
        enabled: false
      }
    }
  }
  dependsOn: [
    appSettings
  ]
}

// No FTP or SCM basic-auth publishing: azd and `az functionapp deployment` deploy with Entra.
resource ftpPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'ftp'
  properties: {
    allow: false
  }
  dependsOn: [
    authentication
  ]
}

resource scmPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'scm'
  properties: {
    allow: false
  }
  dependsOn: [
    ftpPublishing
  ]
}

output name string = functionApp.name
output defaultHostName string = functionApp.properties.defaultHostName
