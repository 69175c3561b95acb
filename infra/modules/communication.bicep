// Azure Communication Services with an Email service, a sender domain linked to it, and the
// managed identity allowed to send (ACS_ENDPOINT with Entra ID: no connection string, no key).
//
// The sender domain is the partner's own (`customDomainName`) in production: a custom domain
// sends 30 mails a minute and 100 an hour. Without one, the Azure-managed domain
// (<guid>.azurecomm.net) is used, which Microsoft limits to 5 a minute and 10 an hour and
// means for trials only. A custom domain must be verified (DNS records in the output
// `customDomainVerificationRecords`) before it can be linked and send; until the deployment is
// told it is verified (`customDomainVerified`), email stays off: ACS_ENDPOINT, EMAIL_SENDER and
// the recipients are left empty, so the app starts and scans without alerting.

@description('Name of the Communication Services resource.')
param communicationServiceName string

@description('Name of the Email Communication Services resource.')
param emailServiceName string

@description('Where ACS keeps data at rest (a geography, not a region), e.g. United States, Europe, UK, Australia.')
param dataLocation string = 'United States'

@description('The partner\'s own sender domain (e.g. alerts.contoso.com). Empty: the Azure-managed domain, for trials only (10 mails an hour).')
param customDomainName string = ''

@description('Set to true once the custom domain\'s DNS records are in place and ACS shows it verified; only then is it linked and used.')
param customDomainVerified bool = false

@description('Local part of the sender address on a custom domain. The Azure-managed domain only offers DoNotReply.')
param customSenderUsername string = 'partnerguard'

@description('Principal (object) id of the managed identity that sends the emails.')
param identityPrincipalId string

param tags object = {}

var useCustomDomain = !empty(customDomainName)
var emailReady = !useCustomDomain || customDomainVerified
var senderUsername = useCustomDomain ? customSenderUsername : 'DoNotReply'

// The least role that sends email with an Entra identity. ACS documents a custom role with exactly
// these three actions, assigned on the Communication Services resource, in place of the built-in
// Communication and Email Service Owner, which grants every Communication and Email operation
// (listing and regenerating the access keys included):
// https://learn.microsoft.com/azure/communication-services/quickstarts/email/send-email-smtp/smtp-authentication#use-a-custom-role-to-limit-permissions-granted-to-the-microsoft-entra-application
// The role is defined in this resource group only and assigned on this one resource.
var emailSenderActions = [
  'Microsoft.Communication/CommunicationServices/Read'
  'Microsoft.Communication/CommunicationServices/Write'
  'Microsoft.Communication/EmailServices/write'
]

resource emailService 'Microsoft.Communication/emailServices@2023-04-01' = {
  name: emailServiceName
  location: 'global'
  tags: tags
  properties: {
    dataLocation: dataLocation
  }
}

resource azureManagedDomain 'Microsoft.Communication/emailServices/domains@2023-04-01' = if (!useCustomDomain) {
  parent: emailService
  name: 'AzureManagedDomain'
  location: 'global'
  tags: tags
  properties: {
    domainManagement: 'AzureManaged'
    userEngagementTracking: 'Disabled'
  }
}

resource customDomain 'Microsoft.Communication/emailServices/domains@2023-04-01' = if (useCustomDomain) {
  parent: emailService
  name: useCustomDomain ? customDomainName : 'unused'
  location: 'global'
  tags: tags
  properties: {
    domainManagement: 'CustomerManaged'
    userEngagementTracking: 'Disabled'
  }
}

resource customSender 'Microsoft.Communication/emailServices/domains/senderUsernames@2023-04-01' = if (useCustomDomain) {
  parent: customDomain
  name: toLower(customSenderUsername)
  properties: {
    username: customSenderUsername
    displayName: 'PartnerGuard'
  }
}

resource communication 'Microsoft.Communication/communicationServices@2023-04-01' = {
  name: communicationServiceName
  location: 'global'
  tags: tags
  properties: {
    dataLocation: dataLocation
    linkedDomains: emailReady ? (useCustomDomain ? [customDomain.id] : [azureManagedDomain.id]) : []
  }
}

resource emailSenderRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(resourceGroup().id, 'partnerguard-email-sender')
  properties: {
    // Role names are unique in the tenant: one role per subscription and resource group.
    roleName: 'PartnerGuard email sender (${subscription().subscriptionId}/${resourceGroup().name})'
    description: 'Sends email through Azure Communication Services: the actions ACS documents for an Entra identity, nothing else.'
    type: 'CustomRole'
    permissions: [
      {
        actions: emailSenderActions
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: [
      resourceGroup().id
    ]
  }
}

resource identitySendsEmail 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(communication.id, identityPrincipalId, 'partnerguard-email-sender')
  scope: communication
  properties: {
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: emailSenderRole.id
  }
}

var senderDomain = useCustomDomain ? customDomain.properties.mailFromSenderDomain : azureManagedDomain.properties.mailFromSenderDomain

@description('True when a sender domain is linked and the app may send.')
output emailReady bool = emailReady
@description('ACS_ENDPOINT: empty until a sender domain is linked.')
output endpoint string = emailReady ? 'https://${communication.properties.hostName}' : ''
@description('EMAIL_SENDER: empty until a sender domain is linked.')
output senderAddress string = emailReady ? '${senderUsername}@${senderDomain}' : ''
@description('DNS records (Domain, SPF, DKIM, DKIM2, DMARC) to publish for a custom domain before verifying it.')
output customDomainVerificationRecords object = useCustomDomain ? customDomain.properties.verificationRecords : {}
