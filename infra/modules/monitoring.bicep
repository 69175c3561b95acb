// Application Insights on a Log Analytics workspace, with local (instrumentation-key)
// authentication turned off: telemetry is accepted only with an Entra token. The app's
// managed identity gets Monitoring Metrics Publisher on the component and the app sends with
// APPLICATIONINSIGHTS_AUTHENTICATION_STRING; without both, an Entra-only component silently
// drops everything the app sends.

@description('Name of the Log Analytics workspace.')
param workspaceName string

@description('Name of the Application Insights component.')
param appInsightsName string

@description('Azure region.')
param location string

param tags object = {}

@description('Days the workspace keeps logs and telemetry (30 days are included in the price).')
@minValue(30)
@maxValue(730)
param retentionInDays int = 30

@description('Principal (object) id of the managed identity that publishes telemetry.')
param identityPrincipalId string

// Monitoring Metrics Publisher: the least role that lets an identity send telemetry to an
// Entra-only Application Insights component.
var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: workspaceName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
    features: {
      // Only Entra-authenticated queries and ingestion: no workspace shared keys.
      disableLocalAuth: true
    }
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: appInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    IngestionMode: 'LogAnalytics'
    DisableLocalAuth: true
  }
}

resource identityPublishesTelemetry 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, identityPrincipalId, monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
  }
}

output appInsightsName string = appInsights.name
output connectionString string = appInsights.properties.ConnectionString
