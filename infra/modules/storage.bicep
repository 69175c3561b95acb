// The storage account: the Functions host's own state (AzureWebJobsStorage: timer schedule
// monitor, function keys, leases), the deployment package of the Flex Consumption app, and
// PartnerGuard's data (PARTNERGUARD_STORAGE: the tables of runs, findings, exceptions, consent,
// alerts and sign-in aggregates, and the scan and alert queues).
//
// Locked down: no shared-key access (every client, host included, signs in with the managed
// identity), no anonymous blob access, HTTPS and TLS 1.2 only. The identity gets the data roles
// it needs and nothing on the management plane.

@description('Storage account name: 3-24 lower-case letters and digits, globally unique.')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region.')
param location string

param tags object = {}

@description('Replication. Geo-redundant by default: runs and findings come back with the next scan, but the exception audit trail is compliance evidence, and geo-redundancy for a few megabytes costs cents.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
param skuName string = 'Standard_GRS'

@description('Blob container that holds the Flex Consumption deployment package.')
param deploymentContainerName string

@description('Principal (object) id of the managed identity that gets the data roles.')
param identityPrincipalId string

// The queues of partnerguard/queues/, with the poison queue the Functions host (or the
// worker itself) moves a message to. Created here so that nothing waits for first use, and so
// that an operator finds the poison queues before the first failure. tests/test_infra_names.py
// holds these to the code.
var queueNames = [
  'partnerguard-scans'
  'partnerguard-scans-poison'
  'partnerguard-alerts'
  'partnerguard-alerts-poison'
]

// The tables of partnerguard/storage under the production prefix `pg`
// (partnerguard/services.py). The app also creates any that are missing.
var tableNames = [
  'pgruns'
  'pgfindings'
  'pgrunfindings'
  'pgscanguard'
  'pgtenants'
  'pgexceptions'
  'pgexceptaudit'
  'pgsignins'
  'pgsigninmarks'
  'pgmethodcache'
  'pgregroster'
  'pgalerts'
]

// Built-in role definition ids (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles).
// Blob Data Owner, not Contributor: the Functions host requires it for AzureWebJobsStorage with an
// identity (it manages blob leases and the keys container), and Flex Consumption reads the
// deployment package with it. Queue and Table Data Contributor: the app creates its queues and
// tables if missing, sends, receives and deletes messages, and reads and writes entities.
var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
var storageQueueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
var storageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
var identityDataRoles = [
  storageBlobDataOwner
  storageQueueDataContributor
  storageTableDataContributor
]

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  // checkov:skip=CKV_AZURE_35: Without a virtual network the Flex Consumption app reaches storage over the public endpoint; every request must carry an Entra token of the managed identity (shared keys are disabled).
  // checkov:skip=CKV_AZURE_59: Same reason: the public endpoint stays open for the app, and access is by Entra identity and data-plane RBAC only (no keys, no SAS, no anonymous blobs).
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
          keyType: 'Account'
        }
        file: {
          enabled: true
          keyType: 'Account'
        }
        queue: {
          enabled: true
          keyType: 'Account'
        }
        table: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [for queueName in queueNames: {
  parent: queueService
  name: queueName
}]

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource tables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = [for tableName in tableNames: {
  parent: tableService
  name: tableName
}]

resource identityDataAccess 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for roleId in identityDataRoles: {
  name: guid(storage.id, identityPrincipalId, roleId)
  scope: storage
  properties: {
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
  }
}]

output name string = storage.name
output blobEndpoint string = storage.properties.primaryEndpoints.blob
output queueEndpoint string = storage.properties.primaryEndpoints.queue
output tableEndpoint string = storage.properties.primaryEndpoints.table
output deploymentContainerUrl string = '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
