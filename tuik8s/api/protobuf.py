"""Kubernetes protobuf request bodies, decoded into the JSON objects the API works on.

client-go's typed clients (`kubectl create namespace|configmap|secret|deployment|service|
job|serviceaccount|ingress`, `kubectl create token`, ...) send their bodies as
`application/vnd.kubernetes.protobuf`: the magic `k8s\\x00`, then a `runtime.Unknown`
whose `typeMeta` names the kind and whose `raw` is the object's own message.

The wire layout of a kind (its field numbers and types) is a protocol fact of Kubernetes
(here as of 1.32); it is kept as a compact table, `_TABLE`, from which protobuf
descriptors are built once, so that the `protobuf` runtime does the byte parsing. The step
from a parsed message to JSON is ours, because the conventions are Kubernetes' and not
protobuf's: Go's `omitempty` (a zero value is left out unless the Go field is a pointer or
has no `omitempty`), inline structs merged into their parent, `metav1.Time` as RFC 3339,
`Quantity` and `IntOrString` as scalars, `[]byte` as base64, `RawExtension` as the JSON
it carries.

Only requests are decoded: kubectl accepts JSON replies to protobuf requests.

A field the table does not know (a newer client, a deprecated volume source) would be
dropped silently by a lenient decoder and the object stored without it; instead the
request is refused with 415 naming the field, so the client can resend as JSON.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import orjson
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError, Message
from google.protobuf.unknown_fields import UnknownFieldSet

from tuik8s.api.errors import StatusError, bad_request

MAGIC = b"k8s\x00"
CONTENT_TYPE = "application/vnd.kubernetes.protobuf"

# The table: one entry per message, `"Name": "field=N[:type] ..."`, in Go struct order.
#   type      string (the default), bool, int32, int64, double, bytes, or a message name;
#             Time, MicroTime, Quantity, IntOrString, RawExtension and FieldsV1 are
#             messages with a JSON form of their own
#   []T       repeated          {T}   map from string keys to T
#   T?        a Go pointer: emitted when present on the wire, even when zero
#             (`replicas: 0`, `optional: false`)
#   T!        a Go scalar without `omitempty`: emitted even when zero (`port: 0`);
#             `name=1?` and `name=1!` are strings
#   otherwise a field follows `omitempty`: a zero value is left out; so is a zero struct,
#             which Go would write as `{}` (or `null` for a zero metav1.Time)
#   *=N:T     an inline (embedded) struct: its fields join this object's JSON
# A bare message name resolves in its own package, then in meta, then in core.
# Deprecated in-tree volume sources (gcePersistentDisk, rbd, ...) are left out on purpose.
# Container and EphemeralContainerCommon (inlined in EphemeralContainer) share a layout.
_CONTAINER = """
    name=1! image=2 command=3:[]string args=4:[]string workingDir=5 ports=6:[]ContainerPort
    envFrom=19:[]EnvFromSource env=7:[]EnvVar resources=8:ResourceRequirements
    resizePolicy=23:[]ContainerResizePolicy restartPolicy=24? volumeMounts=9:[]VolumeMount
    volumeDevices=21:[]VolumeDevice livenessProbe=10:Probe? readinessProbe=11:Probe?
    startupProbe=22:Probe? lifecycle=12:Lifecycle? terminationMessagePath=13
    terminationMessagePolicy=20 imagePullPolicy=14 securityContext=15:SecurityContext?
    stdin=16:bool stdinOnce=17:bool tty=18:bool
"""

_TABLE: dict[str, dict[str, str]] = {
    "meta": {
        # the wire forms of apimachinery's own types
        "Time": "seconds=1:int64 nanos=2:int32",
        "MicroTime": "seconds=1:int64 nanos=2:int32",
        "Quantity": "string=1",
        "IntOrString": "type=1:int64 intVal=2:int32 strVal=3",
        "RawExtension": "raw=1:bytes",
        "FieldsV1": "Raw=1:bytes",
        "TypeMeta": "apiVersion=1 kind=2",
        "Unknown": "typeMeta=1:TypeMeta raw=2:bytes contentEncoding=3 contentType=4",
        # meta/v1
        "ObjectMeta": """
            name=1 generateName=2 namespace=3 selfLink=4 uid=5 resourceVersion=6
            generation=7:int64 creationTimestamp=8:Time deletionTimestamp=9:Time?
            deletionGracePeriodSeconds=10:int64? labels=11:{string} annotations=12:{string}
            ownerReferences=13:[]OwnerReference finalizers=14:[]string
            managedFields=17:[]ManagedFieldsEntry
        """,
        "OwnerReference": """
            apiVersion=5! kind=1! name=3! uid=4! controller=6:bool? blockOwnerDeletion=7:bool?
        """,
        "ManagedFieldsEntry": """
            manager=1 operation=2 apiVersion=3 time=4:Time? fieldsType=6 fieldsV1=7:FieldsV1?
            subresource=8
        """,
        "LabelSelector": "matchLabels=1:{string} matchExpressions=2:[]LabelSelectorRequirement",
        "LabelSelectorRequirement": "key=1! operator=2! values=3:[]string",
        "Condition": """
            type=1! status=2! observedGeneration=3:int64 lastTransitionTime=4:Time reason=5!
            message=6!
        """,
        "DeleteOptions": """
            gracePeriodSeconds=1:int64? preconditions=2:Preconditions? orphanDependents=3:bool?
            propagationPolicy=4? dryRun=5:[]string
            ignoreStoreReadErrorWithClusterBreakingPotential=6:bool?
        """,
        "Preconditions": "uid=1? resourceVersion=2?",
    },
    "core": {
        # core/v1
        "Pod": "metadata=1:ObjectMeta spec=2:PodSpec status=3:PodStatus",
        "Node": "metadata=1:ObjectMeta spec=2:NodeSpec status=3:NodeStatus",
        "Namespace": "metadata=1:ObjectMeta spec=2:NamespaceSpec status=3:NamespaceStatus",
        "ConfigMap": "metadata=1:ObjectMeta immutable=4:bool? data=2:{string} binaryData=3:{bytes}",
        "Secret": """
            metadata=1:ObjectMeta immutable=5:bool? data=2:{bytes} stringData=4:{string} type=3
        """,
        "ServiceAccount": """
            metadata=1:ObjectMeta secrets=2:[]ObjectReference
            imagePullSecrets=3:[]LocalObjectReference automountServiceAccountToken=4:bool?
        """,
        "Service": "metadata=1:ObjectMeta spec=2:ServiceSpec status=3:ServiceStatus",
        "Event": """
            metadata=1:ObjectMeta involvedObject=2:ObjectReference reason=3 message=4
            source=5:EventSource firstTimestamp=6:Time lastTimestamp=7:Time count=8:int32 type=9
            eventTime=10:MicroTime series=11:EventSeries? action=12 related=13:ObjectReference?
            reportingComponent=14! reportingInstance=15!
        """,
        "Endpoints": "metadata=1:ObjectMeta subsets=2:[]EndpointSubset",
        "Binding": "metadata=1:ObjectMeta target=2:ObjectReference",
        "PodSpec": """
            volumes=1:[]Volume initContainers=20:[]Container containers=2:[]Container
            ephemeralContainers=34:[]EphemeralContainer restartPolicy=3
            terminationGracePeriodSeconds=4:int64? activeDeadlineSeconds=5:int64? dnsPolicy=6
            nodeSelector=7:{string} serviceAccountName=8 serviceAccount=9
            automountServiceAccountToken=21:bool? nodeName=10 hostNetwork=11:bool hostPID=12:bool
            hostIPC=13:bool shareProcessNamespace=27:bool? securityContext=14:PodSecurityContext?
            imagePullSecrets=15:[]LocalObjectReference hostname=16 subdomain=17
            affinity=18:Affinity? schedulerName=19 tolerations=22:[]Toleration
            hostAliases=23:[]HostAlias priorityClassName=24 priority=25:int32?
            dnsConfig=26:PodDNSConfig? readinessGates=28:[]PodReadinessGate runtimeClassName=29?
            enableServiceLinks=30:bool? preemptionPolicy=31? overhead=32:{Quantity}
            topologySpreadConstraints=33:[]TopologySpreadConstraint setHostnameAsFQDN=35:bool?
            os=36:PodOS? hostUsers=37:bool? schedulingGates=38:[]PodSchedulingGate
            resourceClaims=39:[]PodResourceClaim resources=40:ResourceRequirements?
        """,
        "PodStatus": """
            phase=1 conditions=2:[]PodCondition message=3 reason=4 nominatedNodeName=11 hostIP=5
            hostIPs=16:[]HostIP podIP=6 podIPs=12:[]PodIP startTime=7:Time?
            initContainerStatuses=10:[]ContainerStatus containerStatuses=8:[]ContainerStatus
            qosClass=9 ephemeralContainerStatuses=13:[]ContainerStatus resize=14
            resourceClaimStatuses=15:[]PodResourceClaimStatus
        """,
        "NodeSpec": """
            podCIDR=1 podCIDRs=7:[]string providerID=3 unschedulable=4:bool taints=5:[]Taint
            configSource=6:NodeConfigSource? externalID=2
        """,
        "NodeStatus": """
            capacity=1:{Quantity} allocatable=2:{Quantity} phase=3 conditions=4:[]NodeCondition
            addresses=5:[]NodeAddress daemonEndpoints=6:NodeDaemonEndpoints
            nodeInfo=7:NodeSystemInfo images=8:[]ContainerImage volumesInUse=9:[]string
            volumesAttached=10:[]AttachedVolume config=11:NodeConfigStatus?
            runtimeHandlers=12:[]NodeRuntimeHandler features=13:NodeFeatures?
        """,
        "NamespaceSpec": "finalizers=1:[]string",
        "NamespaceStatus": "phase=1 conditions=2:[]NamespaceCondition",
        "ObjectReference": """
            kind=1 namespace=2 name=3 uid=4 apiVersion=5 resourceVersion=6 fieldPath=7
        """,
        "LocalObjectReference": "name=1",
        "ServiceSpec": """
            ports=1:[]ServicePort selector=2:{string} clusterIP=3 clusterIPs=18:[]string type=4
            externalIPs=5:[]string sessionAffinity=7 loadBalancerIP=8
            loadBalancerSourceRanges=9:[]string externalName=10 externalTrafficPolicy=11
            healthCheckNodePort=12:int32 publishNotReadyAddresses=13:bool
            sessionAffinityConfig=14:SessionAffinityConfig? ipFamilies=19:[]string
            ipFamilyPolicy=17? allocateLoadBalancerNodePorts=20:bool? loadBalancerClass=21?
            internalTrafficPolicy=22? trafficDistribution=23?
        """,
        "ServiceStatus": "loadBalancer=1:LoadBalancerStatus conditions=2:[]Condition",
        "EventSource": "component=1 host=2",
        "EventSeries": "count=1:int32 lastObservedTime=2:MicroTime",
        "EndpointSubset": """
            addresses=1:[]EndpointAddress notReadyAddresses=2:[]EndpointAddress
            ports=3:[]EndpointPort
        """,
        "Volume": "name=1! *=2:VolumeSource",
        "Container": _CONTAINER,
        "EphemeralContainer": "*=1:EphemeralContainerCommon targetContainerName=2",
        "PodSecurityContext": """
            seLinuxOptions=1:SELinuxOptions? windowsOptions=8:WindowsSecurityContextOptions?
            runAsUser=2:int64? runAsGroup=6:int64? runAsNonRoot=3:bool?
            supplementalGroups=4:[]int64 supplementalGroupsPolicy=12? fsGroup=5:int64?
            sysctls=7:[]Sysctl fsGroupChangePolicy=9? seccompProfile=10:SeccompProfile?
            appArmorProfile=11:AppArmorProfile? seLinuxChangePolicy=13?
        """,
        "Affinity": """
            nodeAffinity=1:NodeAffinity? podAffinity=2:PodAffinity?
            podAntiAffinity=3:PodAntiAffinity?
        """,
        "Toleration": "key=1 operator=2 value=3 effect=4 tolerationSeconds=5:int64?",
        "HostAlias": "ip=1! hostnames=2:[]string",
        "PodDNSConfig": "nameservers=1:[]string searches=2:[]string options=3:[]PodDNSConfigOption",
        "PodReadinessGate": "conditionType=1!",
        "TopologySpreadConstraint": """
            maxSkew=1:int32! topologyKey=2! whenUnsatisfiable=3! labelSelector=4:LabelSelector?
            minDomains=5:int32? nodeAffinityPolicy=6? nodeTaintsPolicy=7?
            matchLabelKeys=8:[]string
        """,
        "PodOS": "name=1!",
        "PodSchedulingGate": "name=1!",
        "PodResourceClaim": "name=1! resourceClaimName=3? resourceClaimTemplateName=4?",
        "ResourceRequirements": """
            limits=1:{Quantity} requests=2:{Quantity} claims=3:[]ResourceClaim
        """,
        "PodCondition": """
            type=1! status=2! lastProbeTime=3:Time lastTransitionTime=4:Time reason=5 message=6
        """,
        "HostIP": "ip=1!",
        "PodIP": "ip=1!",
        "ContainerStatus": """
            name=1! state=2:ContainerState lastState=3:ContainerState ready=4:bool!
            restartCount=5:int32! image=6! imageID=7! containerID=8 started=9:bool?
            allocatedResources=10:{Quantity} resources=11:ResourceRequirements?
            volumeMounts=12:[]VolumeMountStatus user=13:ContainerUser?
            allocatedResourcesStatus=14:[]ResourceStatus
        """,
        "PodResourceClaimStatus": "name=1! resourceClaimName=2?",
        "Taint": "key=1! value=2 effect=3! timeAdded=4:Time?",
        "NodeConfigSource": "configMap=2:ConfigMapNodeConfigSource?",
        "NodeCondition": """
            type=1! status=2! lastHeartbeatTime=3:Time lastTransitionTime=4:Time reason=5
            message=6
        """,
        "NodeAddress": "type=1! address=2!",
        "NodeDaemonEndpoints": "kubeletEndpoint=1:DaemonEndpoint",
        "NodeSystemInfo": """
            machineID=1! systemUUID=2! bootID=3! kernelVersion=4! osImage=5!
            containerRuntimeVersion=6! kubeletVersion=7! kubeProxyVersion=8! operatingSystem=9!
            architecture=10!
        """,
        "ContainerImage": "names=1:[]string sizeBytes=2:int64",
        "AttachedVolume": "name=1! devicePath=2!",
        "NodeConfigStatus": """
            assigned=1:NodeConfigSource? active=2:NodeConfigSource?
            lastKnownGood=3:NodeConfigSource? error=4
        """,
        "NodeRuntimeHandler": "name=1! features=2:NodeRuntimeHandlerFeatures?",
        "NodeFeatures": "supplementalGroupsPolicy=1:bool?",
        "NamespaceCondition": "type=1! status=2! lastTransitionTime=4:Time reason=5 message=6",
        "ServicePort": """
            name=1 protocol=2 appProtocol=6? port=3:int32! targetPort=4:IntOrString
            nodePort=5:int32
        """,
        "SessionAffinityConfig": "clientIP=1:ClientIPConfig?",
        "LoadBalancerStatus": "ingress=1:[]LoadBalancerIngress",
        "EndpointAddress": "ip=1! hostname=3 nodeName=4? targetRef=2:ObjectReference?",
        "EndpointPort": "name=1 port=2:int32! protocol=3 appProtocol=4?",
        "PodTemplateSpec": "metadata=1:ObjectMeta spec=2:PodSpec",
        "VolumeSource": """
            hostPath=1:HostPathVolumeSource? emptyDir=2:EmptyDirVolumeSource?
            secret=6:SecretVolumeSource? nfs=7:NFSVolumeSource?
            persistentVolumeClaim=10:PersistentVolumeClaimVolumeSource?
            downwardAPI=16:DownwardAPIVolumeSource? configMap=19:ConfigMapVolumeSource?
            projected=26:ProjectedVolumeSource? csi=28:CSIVolumeSource?
            ephemeral=29:EphemeralVolumeSource? image=30:ImageVolumeSource?
        """,
        "ContainerPort": "name=1 hostPort=2:int32 containerPort=3:int32! protocol=4 hostIP=5",
        "EnvFromSource": "prefix=1 configMapRef=2:ConfigMapEnvSource? secretRef=3:SecretEnvSource?",
        "EnvVar": "name=1! value=2 valueFrom=3:EnvVarSource?",
        "ContainerResizePolicy": "resourceName=1! restartPolicy=2!",
        "VolumeMount": """
            name=1! readOnly=2:bool recursiveReadOnly=7? mountPath=3! subPath=4
            mountPropagation=5? subPathExpr=6
        """,
        "VolumeDevice": "name=1! devicePath=2!",
        "Probe": """
            *=1:ProbeHandler initialDelaySeconds=2:int32 timeoutSeconds=3:int32
            periodSeconds=4:int32 successThreshold=5:int32 failureThreshold=6:int32
            terminationGracePeriodSeconds=7:int64?
        """,
        "Lifecycle": "postStart=1:LifecycleHandler? preStop=2:LifecycleHandler?",
        "SecurityContext": """
            capabilities=1:Capabilities? privileged=2:bool? seLinuxOptions=3:SELinuxOptions?
            windowsOptions=10:WindowsSecurityContextOptions? runAsUser=4:int64?
            runAsGroup=8:int64? runAsNonRoot=5:bool? readOnlyRootFilesystem=6:bool?
            allowPrivilegeEscalation=7:bool? procMount=9? seccompProfile=11:SeccompProfile?
            appArmorProfile=12:AppArmorProfile?
        """,
        "EphemeralContainerCommon": _CONTAINER,
        "SELinuxOptions": "user=1 role=2 type=3 level=4",
        "WindowsSecurityContextOptions": """
            gmsaCredentialSpecName=1? gmsaCredentialSpec=2? runAsUserName=3? hostProcess=4:bool?
        """,
        "Sysctl": "name=1! value=2!",
        "SeccompProfile": "type=1! localhostProfile=2?",
        "AppArmorProfile": "type=1! localhostProfile=2?",
        "NodeAffinity": """
            requiredDuringSchedulingIgnoredDuringExecution=1:NodeSelector?
            preferredDuringSchedulingIgnoredDuringExecution=2:[]PreferredSchedulingTerm
        """,
        "PodAffinity": """
            requiredDuringSchedulingIgnoredDuringExecution=1:[]PodAffinityTerm
            preferredDuringSchedulingIgnoredDuringExecution=2:[]WeightedPodAffinityTerm
        """,
        "PodAntiAffinity": """
            requiredDuringSchedulingIgnoredDuringExecution=1:[]PodAffinityTerm
            preferredDuringSchedulingIgnoredDuringExecution=2:[]WeightedPodAffinityTerm
        """,
        "PodDNSConfigOption": "name=1 value=2?",
        "ResourceClaim": "name=1! request=2",
        "ContainerState": """
            waiting=1:ContainerStateWaiting? running=2:ContainerStateRunning?
            terminated=3:ContainerStateTerminated?
        """,
        "VolumeMountStatus": "name=1! mountPath=2! readOnly=3:bool recursiveReadOnly=4?",
        "ContainerUser": "linux=1:LinuxContainerUser?",
        "ResourceStatus": "name=1! resources=2:[]ResourceHealth",
        "ConfigMapNodeConfigSource": """
            namespace=1! name=2! uid=3 resourceVersion=4 kubeletConfigKey=5!
        """,
        "DaemonEndpoint": "Port=1:int32!",
        "NodeRuntimeHandlerFeatures": "recursiveReadOnlyMounts=1:bool? userNamespaces=2:bool?",
        "ClientIPConfig": "timeoutSeconds=1:int32?",
        "LoadBalancerIngress": "ip=1 hostname=2 ipMode=3? ports=4:[]PortStatus",
        "TypedLocalObjectReference": "apiGroup=1? kind=2! name=3!",
        "HostPathVolumeSource": "path=1! type=2?",
        "EmptyDirVolumeSource": "medium=1 sizeLimit=2:Quantity?",
        "SecretVolumeSource": """
            secretName=1 items=2:[]KeyToPath defaultMode=3:int32? optional=4:bool?
        """,
        "NFSVolumeSource": "server=1! path=2! readOnly=3:bool",
        "PersistentVolumeClaimVolumeSource": "claimName=1! readOnly=2:bool",
        "DownwardAPIVolumeSource": "items=1:[]DownwardAPIVolumeFile defaultMode=2:int32?",
        "ConfigMapVolumeSource": """
            *=1:LocalObjectReference items=2:[]KeyToPath defaultMode=3:int32? optional=4:bool?
        """,
        "ProjectedVolumeSource": "sources=1:[]VolumeProjection defaultMode=2:int32?",
        "CSIVolumeSource": """
            driver=1! readOnly=2:bool? fsType=3? volumeAttributes=4:{string}
            nodePublishSecretRef=5:LocalObjectReference?
        """,
        "EphemeralVolumeSource": "volumeClaimTemplate=1:PersistentVolumeClaimTemplate?",
        "ImageVolumeSource": "reference=1 pullPolicy=2",
        "ConfigMapEnvSource": "*=1:LocalObjectReference optional=2:bool?",
        "SecretEnvSource": "*=1:LocalObjectReference optional=2:bool?",
        "EnvVarSource": """
            fieldRef=1:ObjectFieldSelector? resourceFieldRef=2:ResourceFieldSelector?
            configMapKeyRef=3:ConfigMapKeySelector? secretKeyRef=4:SecretKeySelector?
        """,
        "ProbeHandler": """
            exec=1:ExecAction? httpGet=2:HTTPGetAction? tcpSocket=3:TCPSocketAction?
            grpc=4:GRPCAction?
        """,
        "LifecycleHandler": """
            exec=1:ExecAction? httpGet=2:HTTPGetAction? tcpSocket=3:TCPSocketAction?
            sleep=4:SleepAction?
        """,
        "Capabilities": "add=1:[]string drop=2:[]string",
        "NodeSelector": "nodeSelectorTerms=1:[]NodeSelectorTerm",
        "PreferredSchedulingTerm": "weight=1:int32! preference=2:NodeSelectorTerm",
        "PodAffinityTerm": """
            labelSelector=1:LabelSelector? namespaces=2:[]string topologyKey=3!
            namespaceSelector=4:LabelSelector? matchLabelKeys=5:[]string
            mismatchLabelKeys=6:[]string
        """,
        "WeightedPodAffinityTerm": "weight=1:int32! podAffinityTerm=2:PodAffinityTerm",
        "ContainerStateWaiting": "reason=1 message=2",
        "ContainerStateRunning": "startedAt=1:Time",
        "ContainerStateTerminated": """
            exitCode=1:int32! signal=2:int32 reason=3 message=4 startedAt=5:Time finishedAt=6:Time
            containerID=7
        """,
        "LinuxContainerUser": "uid=1:int64! gid=2:int64! supplementalGroups=3:[]int64",
        "ResourceHealth": "resourceID=1! health=2",
        "PortStatus": "port=1:int32! protocol=2! error=3?",
        "KeyToPath": "key=1! path=2! mode=3:int32?",
        "DownwardAPIVolumeFile": """
            path=1! fieldRef=2:ObjectFieldSelector? resourceFieldRef=3:ResourceFieldSelector?
            mode=4:int32?
        """,
        "VolumeProjection": """
            secret=1:SecretProjection? downwardAPI=2:DownwardAPIProjection?
            configMap=3:ConfigMapProjection? serviceAccountToken=4:ServiceAccountTokenProjection?
            clusterTrustBundle=5:ClusterTrustBundleProjection?
        """,
        "PersistentVolumeClaimTemplate": "metadata=1:ObjectMeta spec=2:PersistentVolumeClaimSpec",
        "ObjectFieldSelector": "apiVersion=1 fieldPath=2!",
        "ResourceFieldSelector": "containerName=1 resource=2! divisor=3:Quantity",
        "ConfigMapKeySelector": "*=1:LocalObjectReference key=2! optional=3:bool?",
        "SecretKeySelector": "*=1:LocalObjectReference key=2! optional=3:bool?",
        "ExecAction": "command=1:[]string",
        "HTTPGetAction": "path=1 port=2:IntOrString host=3 scheme=4 httpHeaders=5:[]HTTPHeader",
        "TCPSocketAction": "port=1:IntOrString host=2",
        "GRPCAction": "port=1:int32! service=2?",
        "SleepAction": "seconds=1:int64!",
        "NodeSelectorTerm": """
            matchExpressions=1:[]NodeSelectorRequirement matchFields=2:[]NodeSelectorRequirement
        """,
        "SecretProjection": "*=1:LocalObjectReference items=2:[]KeyToPath optional=4:bool?",
        "DownwardAPIProjection": "items=1:[]DownwardAPIVolumeFile",
        "ConfigMapProjection": "*=1:LocalObjectReference items=2:[]KeyToPath optional=4:bool?",
        "ServiceAccountTokenProjection": "audience=1 expirationSeconds=2:int64? path=3!",
        "ClusterTrustBundleProjection": """
            name=1? signerName=2? labelSelector=3:LabelSelector? optional=5:bool? path=4!
        """,
        "PersistentVolumeClaimSpec": """
            accessModes=1:[]string selector=4:LabelSelector?
            resources=2:VolumeResourceRequirements volumeName=3 storageClassName=5? volumeMode=6?
            dataSource=7:TypedLocalObjectReference? dataSourceRef=8:TypedObjectReference?
            volumeAttributesClassName=9?
        """,
        "HTTPHeader": "name=1! value=2!",
        "NodeSelectorRequirement": "key=1! operator=2! values=3:[]string",
        "VolumeResourceRequirements": "limits=1:{Quantity} requests=2:{Quantity}",
        "TypedObjectReference": "apiGroup=1? kind=2! name=3! namespace=4?",
    },
    "apps": {
        # apps/v1
        "Deployment": "metadata=1:ObjectMeta spec=2:DeploymentSpec status=3:DeploymentStatus",
        "ReplicaSet": "metadata=1:ObjectMeta spec=2:ReplicaSetSpec status=3:ReplicaSetStatus",
        "DaemonSet": "metadata=1:ObjectMeta spec=2:DaemonSetSpec status=3:DaemonSetStatus",
        "ControllerRevision": "metadata=1:ObjectMeta data=2:RawExtension revision=3:int64!",
        "DeploymentSpec": """
            replicas=1:int32? selector=2:LabelSelector? template=3:PodTemplateSpec
            strategy=4:DeploymentStrategy minReadySeconds=5:int32 revisionHistoryLimit=6:int32?
            paused=7:bool progressDeadlineSeconds=9:int32?
        """,
        "DeploymentStatus": """
            observedGeneration=1:int64 replicas=2:int32 updatedReplicas=3:int32
            readyReplicas=7:int32 availableReplicas=4:int32 unavailableReplicas=5:int32
            conditions=6:[]DeploymentCondition collisionCount=8:int32?
        """,
        "ReplicaSetSpec": """
            replicas=1:int32? minReadySeconds=4:int32 selector=2:LabelSelector?
            template=3:PodTemplateSpec
        """,
        "ReplicaSetStatus": """
            replicas=1:int32! fullyLabeledReplicas=2:int32 readyReplicas=4:int32
            availableReplicas=5:int32 observedGeneration=3:int64
            conditions=6:[]ReplicaSetCondition
        """,
        "DaemonSetSpec": """
            selector=1:LabelSelector? template=2:PodTemplateSpec
            updateStrategy=3:DaemonSetUpdateStrategy minReadySeconds=4:int32
            revisionHistoryLimit=6:int32?
        """,
        "DaemonSetStatus": """
            currentNumberScheduled=1:int32! numberMisscheduled=2:int32!
            desiredNumberScheduled=3:int32! numberReady=4:int32! observedGeneration=5:int64
            updatedNumberScheduled=6:int32 numberAvailable=7:int32 numberUnavailable=8:int32
            collisionCount=9:int32? conditions=10:[]DaemonSetCondition
        """,
        "DeploymentStrategy": "type=1 rollingUpdate=2:RollingUpdateDeployment?",
        "DeploymentCondition": """
            type=1! status=2! lastUpdateTime=6:Time lastTransitionTime=7:Time reason=4 message=5
        """,
        "ReplicaSetCondition": "type=1! status=2! lastTransitionTime=3:Time reason=4 message=5",
        "DaemonSetUpdateStrategy": "type=1 rollingUpdate=2:RollingUpdateDaemonSet?",
        "DaemonSetCondition": "type=1! status=2! lastTransitionTime=3:Time reason=4 message=5",
        "RollingUpdateDeployment": "maxUnavailable=1:IntOrString? maxSurge=2:IntOrString?",
        "RollingUpdateDaemonSet": "maxUnavailable=1:IntOrString? maxSurge=2:IntOrString?",
    },
    "batch": {
        # batch/v1
        "Job": "metadata=1:ObjectMeta spec=2:JobSpec status=3:JobStatus",
        "JobSpec": """
            parallelism=1:int32? completions=2:int32? activeDeadlineSeconds=3:int64?
            podFailurePolicy=11:PodFailurePolicy? successPolicy=16:SuccessPolicy?
            backoffLimit=7:int32? backoffLimitPerIndex=12:int32? maxFailedIndexes=13:int32?
            selector=4:LabelSelector? manualSelector=5:bool? template=6:PodTemplateSpec
            ttlSecondsAfterFinished=8:int32? completionMode=9? suspend=10:bool?
            podReplacementPolicy=14? managedBy=15?
        """,
        "JobStatus": """
            conditions=1:[]JobCondition startTime=2:Time? completionTime=3:Time? active=4:int32
            succeeded=5:int32 failed=6:int32 terminating=11:int32? completedIndexes=7
            failedIndexes=10? uncountedTerminatedPods=8:UncountedTerminatedPods? ready=9:int32?
        """,
        "PodFailurePolicy": "rules=1:[]PodFailurePolicyRule",
        "SuccessPolicy": "rules=1:[]SuccessPolicyRule",
        "JobCondition": """
            type=1! status=2! lastProbeTime=3:Time lastTransitionTime=4:Time reason=5 message=6
        """,
        "UncountedTerminatedPods": "succeeded=1:[]string failed=2:[]string",
        "PodFailurePolicyRule": """
            action=1! onExitCodes=2:PodFailurePolicyOnExitCodesRequirement?
            onPodConditions=3:[]PodFailurePolicyOnPodConditionsPattern
        """,
        "SuccessPolicyRule": "succeededIndexes=1? succeededCount=2:int32?",
        "PodFailurePolicyOnExitCodesRequirement": "containerName=1? operator=2! values=3:[]int32",
        "PodFailurePolicyOnPodConditionsPattern": "type=1! status=2!",
    },
    "networking": {
        # networking.k8s.io/v1
        "Ingress": "metadata=1:ObjectMeta spec=2:IngressSpec status=3:IngressStatus",
        "IngressClass": "metadata=1:ObjectMeta spec=2:IngressClassSpec",
        "IngressSpec": """
            ingressClassName=4? defaultBackend=1:IngressBackend? tls=2:[]IngressTLS
            rules=3:[]IngressRule
        """,
        "IngressStatus": "loadBalancer=1:IngressLoadBalancerStatus",
        "IngressClassSpec": "controller=1 parameters=2:IngressClassParametersReference?",
        "IngressBackend": "service=4:IngressServiceBackend? resource=3:TypedLocalObjectReference?",
        "IngressTLS": "hosts=1:[]string secretName=2",
        "IngressRule": "host=1 *=2:IngressRuleValue",
        "IngressLoadBalancerStatus": "ingress=1:[]IngressLoadBalancerIngress",
        "IngressClassParametersReference": "apiGroup=1? kind=2! name=3! scope=4? namespace=5?",
        "IngressServiceBackend": "name=1! port=2:ServiceBackendPort",
        "IngressRuleValue": "http=1:HTTPIngressRuleValue?",
        "IngressLoadBalancerIngress": "ip=1 hostname=2 ports=4:[]IngressPortStatus",
        "ServiceBackendPort": "name=1 number=2:int32",
        "HTTPIngressRuleValue": "paths=1:[]HTTPIngressPath",
        "IngressPortStatus": "port=1:int32! protocol=2! error=3?",
        "HTTPIngressPath": "path=1 pathType=3? backend=2:IngressBackend",
    },
    "autoscalingv1": {
        # autoscaling/v1
        "HorizontalPodAutoscaler": """
            metadata=1:ObjectMeta spec=2:HorizontalPodAutoscalerSpec
            status=3:HorizontalPodAutoscalerStatus
        """,
        "Scale": "metadata=1:ObjectMeta spec=2:ScaleSpec status=3:ScaleStatus",
        "HorizontalPodAutoscalerSpec": """
            scaleTargetRef=1:CrossVersionObjectReference minReplicas=2:int32? maxReplicas=3:int32!
            targetCPUUtilizationPercentage=4:int32?
        """,
        "HorizontalPodAutoscalerStatus": """
            observedGeneration=1:int64? lastScaleTime=2:Time? currentReplicas=3:int32!
            desiredReplicas=4:int32! currentCPUUtilizationPercentage=5:int32?
        """,
        "ScaleSpec": "replicas=1:int32",
        "ScaleStatus": "replicas=1:int32! selector=2",
        "CrossVersionObjectReference": "kind=1! name=2! apiVersion=3",
    },
    "autoscalingv2": {
        # autoscaling/v2
        "HorizontalPodAutoscaler": """
            metadata=1:ObjectMeta spec=2:HorizontalPodAutoscalerSpec
            status=3:HorizontalPodAutoscalerStatus
        """,
        "HorizontalPodAutoscalerSpec": """
            scaleTargetRef=1:CrossVersionObjectReference minReplicas=2:int32? maxReplicas=3:int32!
            metrics=4:[]MetricSpec behavior=5:HorizontalPodAutoscalerBehavior?
        """,
        "HorizontalPodAutoscalerStatus": """
            observedGeneration=1:int64? lastScaleTime=2:Time? currentReplicas=3:int32
            desiredReplicas=4:int32! currentMetrics=5:[]MetricStatus
            conditions=6:[]HorizontalPodAutoscalerCondition
        """,
        "CrossVersionObjectReference": "kind=1! name=2! apiVersion=3",
        "MetricSpec": """
            type=1! object=2:ObjectMetricSource? pods=3:PodsMetricSource?
            resource=4:ResourceMetricSource? containerResource=7:ContainerResourceMetricSource?
            external=5:ExternalMetricSource?
        """,
        "HorizontalPodAutoscalerBehavior": """
            scaleUp=1:HPAScalingRules? scaleDown=2:HPAScalingRules?
        """,
        "MetricStatus": """
            type=1! object=2:ObjectMetricStatus? pods=3:PodsMetricStatus?
            resource=4:ResourceMetricStatus? containerResource=7:ContainerResourceMetricStatus?
            external=5:ExternalMetricStatus?
        """,
        "HorizontalPodAutoscalerCondition": """
            type=1! status=2! lastTransitionTime=3:Time reason=4 message=5
        """,
        "ObjectMetricSource": """
            describedObject=1:CrossVersionObjectReference target=2:MetricTarget
            metric=3:MetricIdentifier
        """,
        "PodsMetricSource": "metric=1:MetricIdentifier target=2:MetricTarget",
        "ResourceMetricSource": "name=1! target=2:MetricTarget",
        "ContainerResourceMetricSource": "name=1! target=2:MetricTarget container=3!",
        "ExternalMetricSource": "metric=1:MetricIdentifier target=2:MetricTarget",
        "HPAScalingRules": """
            stabilizationWindowSeconds=3:int32? selectPolicy=1? policies=2:[]HPAScalingPolicy
        """,
        "ObjectMetricStatus": """
            metric=1:MetricIdentifier current=2:MetricValueStatus
            describedObject=3:CrossVersionObjectReference
        """,
        "PodsMetricStatus": "metric=1:MetricIdentifier current=2:MetricValueStatus",
        "ResourceMetricStatus": "name=1! current=2:MetricValueStatus",
        "ContainerResourceMetricStatus": "name=1! current=2:MetricValueStatus container=3!",
        "ExternalMetricStatus": "metric=1:MetricIdentifier current=2:MetricValueStatus",
        "MetricTarget": """
            type=1! value=2:Quantity? averageValue=3:Quantity? averageUtilization=4:int32?
        """,
        "MetricIdentifier": "name=1! selector=2:LabelSelector?",
        "HPAScalingPolicy": "type=1! value=2:int32! periodSeconds=3:int32!",
        "MetricValueStatus": """
            value=1:Quantity? averageValue=2:Quantity? averageUtilization=3:int32?
        """,
    },
    "coordination": {
        # coordination.k8s.io/v1
        "Lease": "metadata=1:ObjectMeta spec=2:LeaseSpec",
        "LeaseSpec": """
            holderIdentity=1? leaseDurationSeconds=2:int32? acquireTime=3:MicroTime?
            renewTime=4:MicroTime? leaseTransitions=5:int32? strategy=6? preferredHolder=7?
        """,
    },
    "discovery": {
        # discovery.k8s.io/v1
        "EndpointSlice": "metadata=1:ObjectMeta addressType=4! endpoints=2:[]Endpoint ports=3:[]EndpointPort",
        "Endpoint": """
            addresses=1:[]string conditions=2:EndpointConditions hostname=3? targetRef=4:ObjectReference?
            deprecatedTopology=5:{string} nodeName=6? zone=7? hints=8:EndpointHints?
        """,
        "EndpointConditions": "ready=1:bool? serving=2:bool? terminating=3:bool?",
        "EndpointHints": "forZones=1:[]ForZone",
        "ForZone": "name=1!",
        "EndpointPort": "name=1? protocol=2? port=3:int32? appProtocol=4?",
    },
    "policy": {
        # policy/v1
        "Eviction": "metadata=1:ObjectMeta deleteOptions=2:DeleteOptions?",
    },
    "authentication": {
        # authentication.k8s.io/v1
        "TokenRequest": "metadata=1:ObjectMeta spec=2:TokenRequestSpec status=3:TokenRequestStatus",
        "TokenRequestSpec": """
            audiences=1:[]string expirationSeconds=4:int64? boundObjectRef=3:BoundObjectReference?
        """,
        "TokenRequestStatus": "token=1! expirationTimestamp=2:Time",
        "BoundObjectReference": "kind=1 apiVersion=2 name=3 uid=4",
    },
}

# (apiVersion, kind) -> the message of the object; apiVersion None: any group version
# (options types such as DeleteOptions are registered in every group version).
_KINDS: dict[tuple[str | None, str], str] = {
    ("v1", "Namespace"): "core.Namespace",
    ("v1", "ConfigMap"): "core.ConfigMap",
    ("v1", "Secret"): "core.Secret",
    ("v1", "ServiceAccount"): "core.ServiceAccount",
    ("v1", "Service"): "core.Service",
    ("v1", "Pod"): "core.Pod",
    ("v1", "Node"): "core.Node",
    ("v1", "Event"): "core.Event",
    ("v1", "Endpoints"): "core.Endpoints",
    ("v1", "Binding"): "core.Binding",
    ("apps/v1", "Deployment"): "apps.Deployment",
    ("apps/v1", "ReplicaSet"): "apps.ReplicaSet",
    ("apps/v1", "DaemonSet"): "apps.DaemonSet",
    ("apps/v1", "ControllerRevision"): "apps.ControllerRevision",
    ("batch/v1", "Job"): "batch.Job",
    ("networking.k8s.io/v1", "Ingress"): "networking.Ingress",
    ("networking.k8s.io/v1", "IngressClass"): "networking.IngressClass",
    ("autoscaling/v2", "HorizontalPodAutoscaler"): "autoscalingv2.HorizontalPodAutoscaler",
    ("autoscaling/v1", "HorizontalPodAutoscaler"): "autoscalingv1.HorizontalPodAutoscaler",
    ("autoscaling/v1", "Scale"): "autoscalingv1.Scale",
    ("coordination.k8s.io/v1", "Lease"): "coordination.Lease",
    ("discovery.k8s.io/v1", "EndpointSlice"): "discovery.EndpointSlice",
    ("policy/v1", "Eviction"): "policy.Eviction",
    ("policy/v1beta1", "Eviction"): "policy.Eviction",
    ("authentication.k8s.io/v1", "TokenRequest"): "authentication.TokenRequest",
    (None, "DeleteOptions"): "meta.DeleteOptions",
}

_FDP = descriptor_pb2.FieldDescriptorProto
_SCALARS = {
    "string": _FDP.TYPE_STRING,
    "bool": _FDP.TYPE_BOOL,
    "int32": _FDP.TYPE_INT32,
    "int64": _FDP.TYPE_INT64,
    "double": _FDP.TYPE_DOUBLE,
    "bytes": _FDP.TYPE_BYTES,
}
_PACKAGE = "tuik8s.k8s."
_FIELD = re.compile(r"^(\*|\w+)=(\d+)(?::(\[\]|\{)?(\w+)\}?)?([?!])?$")
_AS_JSON = (
    "send the object as JSON instead "
    "(e.g. kubectl create ... --dry-run=client -o yaml | kubectl apply -f -)"
)
_MAX_NESTING = 4  # RawExtensions that hold protobuf objects that hold RawExtensions ...
_nesting: ContextVar[int] = ContextVar("protobuf_nesting", default=0)


@dataclass(frozen=True, slots=True)
class _Spec:
    """One field of the table, parsed."""

    key: str  # the JSON name; "*" for an inline struct
    number: int
    type: str  # a scalar name, or a message as "pkg.Name"
    shape: str  # "" (single), "[]" (repeated) or "{}" (map)
    keep_zero: bool  # `?` or `!`: emitted when present on the wire, even when zero


def _resolve(pkg: str, name: str) -> str:
    if name in _SCALARS:
        return name
    for candidate in (pkg, "meta", "core"):
        if name in _TABLE[candidate]:
            return f"{candidate}.{name}"
    raise ValueError(f"protobuf table: {pkg} uses message {name}, which is not defined")


@cache
def _specs() -> dict[str, list[_Spec]]:
    """The table, parsed: qualified message name -> fields."""
    out: dict[str, list[_Spec]] = {}
    for pkg, messages in _TABLE.items():
        for name, text in messages.items():
            fields: list[_Spec] = []
            for token in text.split():
                m = _FIELD.match(token)
                if not m:
                    raise ValueError(f"protobuf table: bad field {token!r} in {pkg}.{name}")
                key, number, opening, type_name, marker = m.groups()
                shape = {"[]": "[]", "{": "{}"}.get(opening or "", "")
                type_ = _resolve(pkg, type_name or "string")
                fields.append(_Spec(key, int(number), type_, shape, marker is not None))
            out[f"{pkg}.{name}"] = fields
    return out


def _proto_name(spec: _Spec) -> str:
    # an inline struct has no JSON name; upstream names its field after the struct
    if spec.key == "*":
        short = spec.type.rpartition(".")[2]
        return short[0].lower() + short[1:]
    return spec.key


def _add_field(message: descriptor_pb2.DescriptorProto, full_name: str, spec: _Spec) -> None:
    field = message.field.add(name=_proto_name(spec), number=spec.number, label=_FDP.LABEL_OPTIONAL)
    if spec.shape == "{}":
        # a map is a repeated nested entry message {key = 1, value = 2}
        entry = message.nested_type.add(name=field.name[0].upper() + field.name[1:] + "Entry")
        entry.options.map_entry = True
        entry.field.add(name="key", number=1, label=_FDP.LABEL_OPTIONAL, type=_FDP.TYPE_STRING)
        _add_field(entry, f"{full_name}.{entry.name}", _Spec("value", 2, spec.type, "", False))
        field.label = _FDP.LABEL_REPEATED
        field.type = _FDP.TYPE_MESSAGE
        field.type_name = f".{_PACKAGE}{full_name}.{entry.name}"
        return
    if spec.shape == "[]":
        field.label = _FDP.LABEL_REPEATED
    if spec.type in _SCALARS:
        field.type = _SCALARS[spec.type]
    else:
        field.type = _FDP.TYPE_MESSAGE
        field.type_name = f".{_PACKAGE}{spec.type}"


@cache
def _pool() -> descriptor_pool.DescriptorPool:
    pool = descriptor_pool.DescriptorPool()
    specs = _specs()
    earlier: list[str] = []
    for pkg, messages in _TABLE.items():
        # edition 2023 keeps proto2's field presence (a pointer set to zero is still there)
        # and, unlike proto2, refuses strings that are not UTF-8 while parsing
        file = descriptor_pb2.FileDescriptorProto(
            name=f"tuik8s/k8s/{pkg}.proto", package=_PACKAGE + pkg, syntax="editions",
            edition=descriptor_pb2.EDITION_2023,
        )
        file.dependency.extend(earlier)  # meta and core come first; later packages use them
        for name in messages:
            message = file.message_type.add(name=name)
            for spec in specs[f"{pkg}.{name}"]:
                _add_field(message, f"{pkg}.{name}", spec)
        pool.Add(file)
        earlier.append(file.name)
    return pool


@cache
def message_class(name: str) -> type[Message]:
    """The protobuf message class of a table entry, such as `apps.Deployment` or
    `meta.Unknown` (for tests and tools that build protobuf bodies)."""
    return message_factory.GetMessageClass(_pool().FindMessageTypeByName(_PACKAGE + name))


# ---- from parsed messages to Kubernetes JSON ------------------------------------------

Convert = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class _Plan:
    """How one field of a message becomes JSON."""

    key: str | None  # None: an inline struct, merged into the parent
    convert: Convert
    keep_zero: bool  # present on the wire means emitted, even when zero


def _rfc3339(seconds: int, nanos: int, timespec: str) -> str | None:
    if not seconds and not nanos:
        return None  # the zero metav1.Time, which Go writes as null
    try:
        moment = _EPOCH + timedelta(seconds=seconds, microseconds=nanos // 1000)
    except OverflowError:
        raise bad_request(f"a protobuf timestamp is out of range: {seconds}s") from None
    return moment.replace(tzinfo=None).isoformat(timespec=timespec) + "Z"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _time(m: Any) -> str | None:
    return _rfc3339(m.seconds, m.nanos, "seconds")


def _micro_time(m: Any) -> str | None:
    return _rfc3339(m.seconds, m.nanos, "microseconds")


def _quantity(m: Any) -> str | None:
    return m.string or None


def _int_or_string(m: Any) -> int | str:
    if m.type == 0:
        return int(m.intVal)
    if m.type == 1:
        return str(m.strVal)
    raise bad_request(f"a protobuf IntOrString has unknown type {m.type}")


def _embedded(raw: bytes) -> Any:
    """The object a RawExtension (or managedFields' FieldsV1) carries: JSON, or itself
    a Kubernetes protobuf body."""
    if not raw:
        return None
    if raw.startswith(MAGIC):
        return _decode(raw)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise bad_request(f"an embedded object in the protobuf body is not JSON: {e}") from None


def _raw_extension(m: Any) -> Any:
    return _embedded(m.raw)


def _fields_v1(m: Any) -> Any:
    return _embedded(m.Raw)


def _base64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def _object(m: Any) -> dict[str, Any]:
    plans = _plans()[m.DESCRIPTOR.full_name]
    out: dict[str, Any] = {}
    for fd, value in m.ListFields():
        plan = plans[fd.number]
        converted = plan.convert(value)
        if plan.key is None:
            out.update(converted)
        elif converted if not plan.keep_zero else converted is not None:
            out[plan.key] = converted
    return out


_SPECIAL: dict[str, Convert] = {
    "meta.Time": _time,
    "meta.MicroTime": _micro_time,
    "meta.Quantity": _quantity,
    "meta.IntOrString": _int_or_string,
    "meta.RawExtension": _raw_extension,
    "meta.FieldsV1": _fields_v1,
}


def _single(type_name: str) -> Convert | None:
    """The converter of one value of a type; None where the value is already JSON."""
    if type_name == "bytes":
        return _base64
    if type_name in _SCALARS:
        return None
    return _SPECIAL.get(type_name, _object)


def _each(one: Convert) -> Convert:
    return lambda values: [one(v) for v in values]


def _each_value(one: Convert) -> Convert:
    return lambda values: {k: one(v) for k, v in values.items()}


def _same(value: Any) -> Any:
    return value


def _plan(spec: _Spec) -> _Plan:
    one = _single(spec.type)
    convert: Convert
    if spec.shape == "[]":
        convert = list if one is None else _each(one)
    elif spec.shape == "{}":
        convert = dict if one is None else _each_value(one)
    else:
        convert = one or _same
    return _Plan(None if spec.key == "*" else spec.key, convert, spec.keep_zero)


@cache
def _plans() -> dict[str, dict[int, _Plan]]:
    """Descriptor full name -> field number -> plan."""
    return {
        _PACKAGE + name: {spec.number: _plan(spec) for spec in fields}
        for name, fields in _specs().items()
    }


# ---- the envelope ---------------------------------------------------------------------


def envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    """A Kubernetes protobuf body: the magic, then a runtime.Unknown around `raw`."""
    unknown: Any = message_class("meta.Unknown")()
    unknown.typeMeta.apiVersion = api_version
    unknown.typeMeta.kind = kind
    unknown.raw = raw
    return MAGIC + unknown.SerializeToString()


def _unsupported(message: str) -> StatusError:
    return StatusError(415, "UnsupportedMediaType", message)


def _parse(name: str, data: bytes, what: str) -> Any:
    message: Any = message_class(name)()
    try:
        message.ParseFromString(data)
    except DecodeError:
        raise bad_request(
            f"the protobuf body is malformed: its {what} is truncated, corrupt or holds a string "
            "that is not UTF-8"
        ) from None
    return message


def _first_unknown(m: Any, path: str) -> tuple[str, int, str] | None:
    """(message, field number, JSON path) of the first field the table does not know."""
    unknown = UnknownFieldSet(m)
    if len(unknown):
        return m.DESCRIPTOR.name, unknown[0].field_number, path or "the object"
    plans = _plans()[m.DESCRIPTOR.full_name]
    for fd, value in m.ListFields():
        if fd.message_type is None:
            continue
        key = plans[fd.number].key
        here = path if key is None else f"{path}.{key}" if path else key
        if isinstance(value, Message):
            items = [(here, value)]
        elif fd.message_type.GetOptions().map_entry:
            items = [(f"{here}[{k}]", v) for k, v in value.items() if isinstance(v, Message)]
        else:
            items = [(f"{here}[{i}]", v) for i, v in enumerate(value)]
        for item_path, item in items:
            found = _first_unknown(item, item_path)
            if found:
                return found
    return None


def _check_known(message: Any, raw: bytes, kind: str) -> None:
    size = message.ByteSize()
    message.DiscardUnknownFields()
    if message.ByteSize() == size:
        return
    found = _first_unknown(_parse(message.DESCRIPTOR.full_name[len(_PACKAGE):], raw, kind), "")
    where = f"field {found[1]} of {found[0]} at {found[2]}" if found else "a field"
    raise _unsupported(f"the protobuf {kind} carries {where}, which this server does not know; "
                       f"{_AS_JSON}")


def _decode(data: bytes) -> dict[str, Any]:
    if not data.startswith(MAGIC):
        raise bad_request(r"the protobuf body does not start with the Kubernetes magic 'k8s\x00'")
    unknown = _parse("meta.Unknown", data[len(MAGIC):], "envelope")
    api_version, kind = unknown.typeMeta.apiVersion, unknown.typeMeta.kind
    if not kind:
        raise bad_request("the protobuf body does not name the kind of its object")
    if unknown.contentEncoding or (unknown.contentType and "protobuf" not in unknown.contentType):
        raise _unsupported(
            f"protobuf bodies with content encoding {unknown.contentEncoding!r} and content type "
            f"{unknown.contentType!r} are not supported by this server; {_AS_JSON}"
        )
    name = _KINDS.get((api_version, kind)) or _KINDS.get((None, kind))
    if name is None:
        version = api_version or "no apiVersion"
        raise _unsupported(
            f"protobuf bodies of kind {kind} ({version}) are not supported by this server; "
            f"{_AS_JSON}"
        )
    depth = _nesting.get()
    if depth >= _MAX_NESTING:
        raise bad_request(f"the protobuf body nests objects deeper than {_MAX_NESTING} levels")
    message = _parse(name, unknown.raw, kind)
    _check_known(message, unknown.raw, kind)
    token = _nesting.set(depth + 1)
    try:
        obj = _object(message)
    finally:
        _nesting.reset(token)
    head = {"apiVersion": api_version, "kind": kind} if api_version else {"kind": kind}
    return {**head, **obj}


def decode_k8s_protobuf(data: bytes) -> dict[str, Any]:
    """The JSON object of an `application/vnd.kubernetes.protobuf` request body.

    Raises StatusError: 400 BadRequest for a body that is not a well-formed Kubernetes
    protobuf message, 415 UnsupportedMediaType for a kind or a field this server cannot
    decode from protobuf (the client can send it as JSON instead).
    """
    return _decode(bytes(data))
